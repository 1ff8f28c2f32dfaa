"""HTTP blueprints: auth, console (CSR), imports, admin (settings), mobile (the end user's link), api
(the client app and Snom phones), hooks (provider callbacks)."""
