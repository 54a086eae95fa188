"""Operations I/O: the loopback HTTP server (health, tree, kill switch, console) and the
Discord webhook client. They read the bot's status; they never hold trading state.
"""
