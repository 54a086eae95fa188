#!/usr/bin/env bash
# Installs the Crucible bot as a systemd service and timer. Run as root from the repository:
#     sudo deployment/linux/install.sh
# Safe to run again. Settings through the environment:
#     BOT_USER (crucible)  PYTHON (python3.11)  GATEWAY_HOST/GATEWAY_PORT (from .env, else
#     127.0.0.1:4002)
# It never writes a credential: you edit .env (DISCORD_WEBHOOK_URL, OPERATOR_ID) yourself.
set -euo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BOT_USER="${BOT_USER:-crucible}"
PYTHON="${PYTHON:-python3.11}"
UNIT_DIR=/etc/systemd/system
HERE="$PROJECT_DIR/deployment/linux"

step() { printf '==> %s\n' "$*"; }
warn() { printf '    WARNING: %s\n' "$*"; }

[ "$(id -u)" -eq 0 ] || { echo "run as root (sudo)"; exit 1; }
[ -f "$PROJECT_DIR/pyproject.toml" ] || { echo "no pyproject.toml in $PROJECT_DIR"; exit 1; }

step "service user $BOT_USER"
id -u "$BOT_USER" >/dev/null 2>&1 || useradd --system --home-dir "$PROJECT_DIR" \
    --shell /usr/sbin/nologin "$BOT_USER"

step "virtual environment $PROJECT_DIR/.venv"
[ -x "$PROJECT_DIR/.venv/bin/python" ] || "$PYTHON" -m venv "$PROJECT_DIR/.venv"
"$PROJECT_DIR/.venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo ".venv is older than Python 3.11: remove it and set PYTHON=python3.11"; exit 1; }
"$PROJECT_DIR/.venv/bin/python" -m pip install --upgrade pip
"$PROJECT_DIR/.venv/bin/python" -m pip install -e "$PROJECT_DIR"

step ".env, logs/ and state/"
if [ ! -f "$PROJECT_DIR/.env" ]; then
    cp "$PROJECT_DIR/.env.example" "$PROJECT_DIR/.env"
    warn ".env created from .env.example: set OPERATOR_ID and DISCORD_WEBHOOK_URL in it"
fi
mkdir -p "$PROJECT_DIR/logs" "$PROJECT_DIR/state"
chown -R "$BOT_USER:" "$PROJECT_DIR/logs" "$PROJECT_DIR/state" "$PROJECT_DIR/.env"
chmod 600 "$PROJECT_DIR/.env"

step "units in $UNIT_DIR"
sed -e "s#/opt/crucible-bot#$PROJECT_DIR#g" -e "s#^User=crucible\$#User=$BOT_USER#" \
    -e "s#^Group=crucible\$#Group=$BOT_USER#" "$HERE/crucible-bot.service" \
    > "$UNIT_DIR/crucible-bot.service"
cp "$HERE/crucible-bot.timer" "$UNIT_DIR/crucible-bot.timer"
systemd-analyze verify "$UNIT_DIR/crucible-bot.service" "$UNIT_DIR/crucible-bot.timer"
systemd-analyze calendar "Mon..Fri *-*-* 06:00:00 America/New_York"
systemctl daemon-reload
systemctl enable crucible-bot.service crucible-bot.timer
systemctl start crucible-bot.timer

step "settings check (python -m runtime --check, as $BOT_USER)"
(cd "$PROJECT_DIR" && runuser -u "$BOT_USER" -- "$PROJECT_DIR/.venv/bin/python" -m runtime --check) \
    || warn "--check failed: fix the line it names (a missing gameplan is expected before the first morning)"

env_value() { sed -n "s/^$1=//p" "$PROJECT_DIR/.env" | tail -n 1; }
GATEWAY_HOST="${GATEWAY_HOST:-$(env_value IBKR_HOST)}"
GATEWAY_PORT="${GATEWAY_PORT:-$(env_value IBKR_PORT)}"
GATEWAY_HOST="${GATEWAY_HOST:-127.0.0.1}"
GATEWAY_PORT="${GATEWAY_PORT:-4002}"
step "IB Gateway at $GATEWAY_HOST:$GATEWAY_PORT"
if timeout 3 bash -c "exec 3<>/dev/tcp/$GATEWAY_HOST/$GATEWAY_PORT" 2>/dev/null; then
    echo "    OK: the Gateway API port answers"
else
    warn "nothing listens on $GATEWAY_HOST:$GATEWAY_PORT: start the Gateway container (deployment_notes.md)"
fi

echo
echo "Done. Start now: systemctl start crucible-bot.service"
echo "Next scheduled start: systemctl list-timers crucible-bot.timer"
echo "Logs: $PROJECT_DIR/logs/crucible_bot.log (and journalctl -u crucible-bot)"
