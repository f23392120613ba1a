"""The *AxTrace Email* notification block: AxTrace's notifications as mail, through SMTP.

Prefect 3.9 ships no SMTP notification block (its ``SendgridEmail`` calls Sendgrid's HTTPS
API; ``prefect-email``'s ``EmailServerCredentials`` holds credentials, not recipients), so
this one sends with the standard library's ``smtplib``. Standard library and Prefect only:
Prefect imports this package on every block lookup.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import Literal

from prefect.blocks.abstract import NotificationBlock
from pydantic import Field, SecretStr


class EmailNotification(NotificationBlock):
    """Send AxTrace's notifications as email through an SMTP server: to a team's address, a
    mailing list or a pager's mail gateway. Name it in a site's policy as
    `notification_block: axtrace-email/BLOCK_NAME`.

    Example:
        ```python
        from axtrace_blocks import EmailNotification

        email = EmailNotification.load("BLOCK_NAME")
        ```
    """

    _block_type_name = "AxTrace Email"
    _block_type_slug = "axtrace-email"
    _description = "AxTrace's notifications as email, through an SMTP server."
    _documentation_url = "https://github.com/axtrace/axtrace#notifications"  # type: ignore[assignment]

    smtp_server: str = Field(description="Host name or address of the SMTP server.")
    smtp_port: int = Field(default=587, ge=1, le=65535,
                           description="Port of the SMTP server (587 STARTTLS, 465 SSL).")
    smtp_type: Literal["STARTTLS", "SSL", "INSECURE"] = Field(
        default="STARTTLS", description="How the connection is secured: STARTTLS, SSL, or "
        "INSECURE (plain text: only for a relay on the same host or network).")
    username: str | None = Field(default=None,
                                 description="User name to log in with; empty for no login.")
    password: SecretStr | None = Field(default=None, description="Password to log in with.")
    email_from: str = Field(description="Sender address of the notifications.")
    email_to: list[str] = Field(min_length=1,
                                description="Addresses every notification is sent to.")
    timeout: float = Field(default=10, gt=0,
                           description="Seconds to wait for the SMTP server at each step.")

    async def notify(self, body: str, subject: str | None = None) -> None:
        """Send one mail. The SMTP exchange blocks this thread (AxTrace sends from a thread
        of its own, whose name look-ups it checks); a refused or failed send raises."""
        message = EmailMessage()
        message["From"], message["To"] = self.email_from, ", ".join(self.email_to)
        message["Subject"] = subject or "AxTrace notification"
        message.set_content(body)
        with self._connect() as server:
            if self.username:
                secret = self.password.get_secret_value() if self.password else ""
                server.login(self.username, secret)
            server.send_message(message)

    def _connect(self) -> smtplib.SMTP:
        if self.smtp_type == "SSL":
            return smtplib.SMTP_SSL(self.smtp_server, self.smtp_port, timeout=self.timeout,
                                    context=ssl.create_default_context())
        server = smtplib.SMTP(self.smtp_server, self.smtp_port, timeout=self.timeout)
        if self.smtp_type == "STARTTLS":
            server.starttls(context=ssl.create_default_context())
        return server
