"""Infrastructure every part uses: the one clock, logging and the event journal, state files."""
