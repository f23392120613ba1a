from axtrace.cli import main

main()
