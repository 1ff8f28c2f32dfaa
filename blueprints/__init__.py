"""HTTP blueprints: auth, console (CSR), admin (settings), later mobile and api."""
