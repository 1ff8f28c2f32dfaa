"""The rules of Provisio: every write and transaction lives here."""
