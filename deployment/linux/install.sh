#!/usr/bin/env bash
# Installs the Crucible bot as a systemd service and timer. Run as root from the repository:
#     sudo deployment/linux/install.sh
# Safe to run again. Settings through the environment:
#     BOT_USER (crucible)  PYTHON (python3: any 3.11 or newer)  GATEWAY_HOST/GATEWAY_PORT (from
#     .env, else 127.0.0.1:4002)
#     INSTANCE=NAME  one bot per account: instances/NAME with its own .env (the next free
#                    IBKR_CLIENT_ID and HEALTH_PORT), state/ and logs/, run by the template units
#                    crucible-bot@NAME.service and crucible-bot@NAME.timer
#     IBC_PATH=/opt/ibc  also install ib-gateway.service (IBC + IB Gateway under xvfb-run, at boot)
# It never writes a credential: you edit .env (DISCORD_WEBHOOK_URL, OPERATOR_ID) yourself.
set -euo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BOT_USER="${BOT_USER:-crucible}"
PYTHON="${PYTHON:-python3}"
INSTANCE="${INSTANCE:-}"
IBC_PATH="${IBC_PATH:-}"
UNIT_DIR=/etc/systemd/system
HERE="$PROJECT_DIR/deployment/linux"

step() { printf '==> %s\n' "$*"; }
warn() { printf '    WARNING: %s\n' "$*"; }

[ "$(id -u)" -eq 0 ] || { echo "run as root (sudo)"; exit 1; }
[ -f "$PROJECT_DIR/pyproject.toml" ] || { echo "no pyproject.toml in $PROJECT_DIR"; exit 1; }
if [ -n "$INSTANCE" ] && ! [[ "$INSTANCE" =~ ^[A-Za-z0-9_-]{1,32}$ ]]; then
    echo "INSTANCE must be 1-32 letters, digits, '-' or '_': $INSTANCE"; exit 1
fi
BOT_DIR="$PROJECT_DIR${INSTANCE:+/instances/$INSTANCE}"
UNIT="crucible-bot${INSTANCE:+@$INSTANCE}"

step "service user $BOT_USER"
id -u "$BOT_USER" >/dev/null 2>&1 || useradd --system --home-dir "$PROJECT_DIR" \
    --shell /usr/sbin/nologin "$BOT_USER"

step "virtual environment $PROJECT_DIR/.venv"
[ -x "$PROJECT_DIR/.venv/bin/python" ] || "$PYTHON" -m venv "$PROJECT_DIR/.venv"
"$PROJECT_DIR/.venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo ".venv is older than Python 3.11: remove it and set PYTHON=python3.12 (or 3.11+)"; exit 1; }
"$PROJECT_DIR/.venv/bin/python" -m pip install --upgrade pip
"$PROJECT_DIR/.venv/bin/python" -m pip install -e "$PROJECT_DIR"

# the highest value of KEY among all bots' .env files (DEFAULT when none sets it) plus STEP
# (client ids step by 10: on error 326 a bot tries the next four ids, which must stay its own)
next_free() {
    local key="$1" default="$2" step="$3" highest="" file value
    for file in "$PROJECT_DIR/.env" "$PROJECT_DIR"/instances/*/.env; do
        [ -f "$file" ] || continue
        value="$(sed -n "s/^$key=//p" "$file" | tail -n 1)"
        value="${value:-$default}"
        if [ -z "$highest" ] || [ "$value" -gt "$highest" ]; then highest="$value"; fi
    done
    if [ -z "$highest" ]; then echo "$default"; else echo $(( highest + step )); fi
}

step ".env, logs/ and state/ in $BOT_DIR"
mkdir -p "$BOT_DIR"
if [ ! -f "$BOT_DIR/.env" ]; then
    if [ -n "$INSTANCE" ]; then
        CLIENT_ID="$(next_free IBKR_CLIENT_ID 1 10)"
        HEALTH_PORT="$(next_free HEALTH_PORT 8787 1)"
        sed -e "s/^IBKR_CLIENT_ID=.*/IBKR_CLIENT_ID=$CLIENT_ID/" \
            -e "s/^HEALTH_PORT=.*/HEALTH_PORT=$HEALTH_PORT/" \
            "$PROJECT_DIR/.env.example" > "$BOT_DIR/.env"
        echo "    instance $INSTANCE: IBKR_CLIENT_ID=$CLIENT_ID, HEALTH_PORT=$HEALTH_PORT"
    else
        cp "$PROJECT_DIR/.env.example" "$BOT_DIR/.env"
    fi
    warn ".env created from .env.example: set OPERATOR_ID and DISCORD_WEBHOOK_URL in $BOT_DIR/.env"
fi
mkdir -p "$BOT_DIR/logs" "$BOT_DIR/state" "$BOT_DIR/gameplans"
chown -R "$BOT_USER:" "$BOT_DIR/logs" "$BOT_DIR/state" "$BOT_DIR/gameplans" "$BOT_DIR/.env"
chmod 600 "$BOT_DIR/.env"

step "units in $UNIT_DIR"
install_unit() {   # install_unit FILE: with this project's paths and service user
    sed -e "s#/opt/crucible-bot#$PROJECT_DIR#g" -e "s#^User=crucible\$#User=$BOT_USER#" \
        -e "s#^Group=crucible\$#Group=$BOT_USER#" ${IBC_PATH:+-e "s#/opt/ibc#$IBC_PATH#g"} \
        "$HERE/$1" > "$UNIT_DIR/$1"
}
if [ -n "$INSTANCE" ]; then
    install_unit crucible-bot@.service
    install_unit crucible-bot@.timer
else
    install_unit crucible-bot.service
    install_unit crucible-bot.timer
fi
if [ -n "$IBC_PATH" ]; then
    [ -x "$IBC_PATH/gatewaystart.sh" ] || { echo "no executable $IBC_PATH/gatewaystart.sh: install IBC first"; exit 1; }
    command -v xvfb-run >/dev/null || warn "xvfb-run not found: install the xvfb package"
    install_unit ib-gateway.service
    systemd-analyze verify "$UNIT_DIR/ib-gateway.service"
    systemctl daemon-reload
    systemctl enable --now ib-gateway.service
fi
(cd "$UNIT_DIR" && systemd-analyze verify "$UNIT.service" "$UNIT.timer")
systemd-analyze calendar "Mon..Fri *-*-* 06:00:00 America/New_York"
systemctl daemon-reload
systemctl enable "$UNIT.service" "$UNIT.timer"
systemctl start "$UNIT.timer"

step "settings check (python -m runtime --check, as $BOT_USER)"
(cd "$BOT_DIR" && runuser -u "$BOT_USER" -- "$PROJECT_DIR/.venv/bin/python" -m runtime --check) \
    || warn "--check failed: fix the line it names (a missing gameplan is expected before the first morning)"

env_value() { sed -n "s/^$1=//p" "$BOT_DIR/.env" | tail -n 1; }
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
echo "Done. Start now: systemctl start $UNIT.service"
echo "Next scheduled start: systemctl list-timers $UNIT.timer"
echo "Logs: $BOT_DIR/logs/crucible_bot.log (and journalctl -u $UNIT)"
