"""Stand-ins for what Provisio talks to: the reference client (the app) and fake SMS providers."""
