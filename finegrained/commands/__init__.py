"""Subcommands of the ``finegrained`` CLI beyond ``chain`` and ``bench``; registered in ``finegrained.cli.COMMANDS``."""
