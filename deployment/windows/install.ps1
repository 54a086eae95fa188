<#
.SYNOPSIS
    Installs the Crucible bot on Windows: virtual environment, .env, the scheduled task of the
    bot (and, with -IbcPath, the task that starts IBC + IB Gateway at logon), and checks of the
    IB Gateway port and IBC settings. Safe to run again (idempotent).

.DESCRIPTION
    1. Creates .venv in the project directory with Python 3.11+ (py -3 -m venv: the newest
       Python 3 the py launcher knows, else python -m venv) unless it exists, and runs
       pip install -e . into it. No activation script is used (Windows 11's default execution
       policy blocks Activate.ps1): everything calls .venv\Scripts\python.exe directly.
    2. Copies .env.example to .env if there is no .env yet (it never writes a secret: you edit .env).
       With -Name NAME (one bot per account) the bot's directory is instances\NAME: its own
       .env, state\, logs\ and gameplans\; a new instance .env gets the next free
       IBKR_CLIENT_ID and HEALTH_PORT, and the task is called CrucibleBot-NAME.
    3. Runs "python -m runtime --check" and shows the result (a missing gameplan is normal at
       install time; settings errors are not).
    4. Computes the LOCAL time of 06:00 America/New_York with .NET TimeZoneInfo
       ("Eastern Standard Time"): Task Scheduler triggers run in the machine's local time, and
       the operator's PC may be in Central time (05:00) or abroad. If that local time falls on
       another weekday (far east of New York), the Mon-Fri days are shifted with it.
    5. Fills task_scheduler.xml with that time, this user, the venv's python.exe and the project
       directory, saves the rendered copy to state\task_scheduler.rendered.xml and registers it
       with Register-ScheduledTask -Xml (-Force replaces an earlier registration).
    6. Tests the Gateway API port with Test-NetConnection.
    With -IbcPath C:\IBC: registers the task CrucibleGateway (CrucibleGateway-NAME with -Name,
       for that account's own IBC folder) from gateway_task.xml, which runs
       IBC's StartGateway.bat /INLINE at this user's logon and again within 15 minutes if IBC
       exited. The bot's own task also starts 2 minutes after logon, so a reboot at any hour
       (Windows Update) brings back both, given automatic logon (README_DEPLOYMENT.md).
    7. With -IbcConfigPath: creates IBC's config.ini from ibc_config.ini if it does not exist
       (AutoRestartTime set to the local time of 16:30 ET; no credentials written), else checks
       AutoRestartTime, TradingMode and ReadOnlyApi against the bot's .env.

    The task runs "only when the user is logged on" (LogonType InteractiveToken): no password is
    stored anywhere, and IB Gateway needs the logged-on desktop anyway.

.EXAMPLE
    powershell -ExecutionPolicy Bypass -File deployment\windows\install.ps1
.EXAMPLE
    powershell -ExecutionPolicy Bypass -File deployment\windows\install.ps1 -IbcPath C:\IBC -IbcConfigPath "$env:USERPROFILE\Documents\IBC\config.ini"
.EXAMPLE
    powershell -ExecutionPolicy Bypass -File deployment\windows\install.ps1 -Name acct2
#>
[CmdletBinding()]
param(
    [string]$ProjectDir = (Resolve-Path (Join-Path $PSScriptRoot '..\..')).Path,
    [string]$TaskName = '',
    [string]$Name = '',
    [string]$IbcPath = '',
    [string]$GatewayTaskName = '',
    [string]$GatewayHost = '',
    [int]$GatewayPort = 0,
    [string]$IbcConfigPath = '',
    [switch]$SkipPip
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$TaskXmlPath = Join-Path $PSScriptRoot 'task_scheduler.xml'
$GatewayXmlPath = Join-Path $PSScriptRoot 'gateway_task.xml'
$IbcTemplatePath = Join-Path $PSScriptRoot 'ibc_config.ini'
$TaskNs = 'http://schemas.microsoft.com/windows/2004/02/mit/task'
$EasternId = 'Eastern Standard Time'   # Windows' id for America/New_York (DST included)
$StartEt = [TimeSpan]::new(6, 0, 0)     # scheduled start, US/Eastern
$GatewayRestartEt = [TimeSpan]::new(16, 30, 0)  # GATEWAY_RESTART_TIME / IBC AutoRestartTime
$Invariant = [System.Globalization.CultureInfo]::InvariantCulture

function Write-Step([string]$Text) { Write-Host "==> $Text" -ForegroundColor Cyan }
function Write-Ok([string]$Text) { Write-Host "    OK: $Text" -ForegroundColor Green }
function Write-Warn([string]$Text) { Write-Host "    WARNING: $Text" -ForegroundColor Yellow }

function Read-DotEnv([string]$Path) {
    # KEY=value lines of a .env file (comments and blanks skipped); values are not printed.
    $values = @{}
    if (Test-Path -LiteralPath $Path) {
        foreach ($line in Get-Content -LiteralPath $Path -Encoding UTF8) {
            $trimmed = $line.Trim()
            if ($trimmed -eq '' -or $trimmed.StartsWith('#') -or -not $trimmed.Contains('=')) { continue }
            $eq = $trimmed.IndexOf('=')
            $values[$trimmed.Substring(0, $eq).Trim()] = $trimmed.Substring($eq + 1).Trim().Trim('"').Trim("'")
        }
    }
    return $values
}

function Get-NextFree([string]$Key, [int]$Default, [int]$Step, [string[]]$EnvFiles) {
    # The highest value of $Key among the other bots' .env files plus $Step ($Default if none).
    # Client ids step by 10: on error 326 a bot tries its next four ids, which must stay its own.
    $highest = $null
    foreach ($file in $EnvFiles) {
        $values = Read-DotEnv $file
        $value = if ($values.ContainsKey($Key)) { [int]$values[$Key] } else { $Default }
        if ($null -eq $highest -or $value -gt $highest) { $highest = $value }
    }
    if ($null -eq $highest) { return $Default }
    return $highest + $Step
}

function Get-LocalTimeOfEastern([TimeSpan]$EasternTime) {
    # The local clock time (and the day shift) of an ET wall-clock time, for today's ET date.
    $eastern = [System.TimeZoneInfo]::FindSystemTimeZoneById($EasternId)
    $etNow = [System.TimeZoneInfo]::ConvertTimeFromUtc([DateTime]::UtcNow, $eastern)
    $etWall = [DateTime]::new($etNow.Year, $etNow.Month, $etNow.Day, 0, 0, 0,
                              [DateTimeKind]::Unspecified).Add($EasternTime)
    $utc = [System.TimeZoneInfo]::ConvertTimeToUtc($etWall, $eastern)
    $local = [System.TimeZoneInfo]::ConvertTimeFromUtc($utc, [System.TimeZoneInfo]::Local)
    return [pscustomobject]@{
        Local    = $local
        DayShift = ($local.Date - $etWall.Date).Days
    }
}

# --- 0. sanity ------------------------------------------------------------------------------
Write-Step "Project directory: $ProjectDir"
if (-not (Test-Path -LiteralPath (Join-Path $ProjectDir 'pyproject.toml'))) {
    throw "No pyproject.toml in ${ProjectDir}: pass -ProjectDir <the cloned repository>."
}
if (-not (Test-Path -LiteralPath $TaskXmlPath)) { throw "Missing $TaskXmlPath" }
if ($Name -ne '' -and $Name -notmatch '^[A-Za-z0-9_-]{1,32}$') {
    throw "-Name must be 1-32 letters, digits, '-' or '_' (it names a directory and a task): '$Name'"
}
# The bot's working directory: the project (one account) or instances\NAME (one per account).
$BotDir = if ($Name -eq '') { $ProjectDir } else { Join-Path (Join-Path $ProjectDir 'instances') $Name }
if ($TaskName -eq '') { $TaskName = if ($Name -eq '') { 'CrucibleBot' } else { "CrucibleBot-$Name" } }
# Another account's Gateway is another IBC folder (its StartGateway.bat names its own config.ini).
if ($GatewayTaskName -eq '') { $GatewayTaskName = if ($Name -eq '') { 'CrucibleGateway' } else { "CrucibleGateway-$Name" } }
New-Item -ItemType Directory -Force -Path $BotDir | Out-Null

# --- 1. virtual environment -------------------------------------------------------------------
$VenvDir = Join-Path $ProjectDir '.venv'
$VenvPython = Join-Path $VenvDir 'Scripts\python.exe'
if (-not (Test-Path -LiteralPath $VenvPython)) {
    Write-Step 'Creating the virtual environment (.venv)'
    if (Get-Command py -ErrorAction SilentlyContinue) {
        & py -3 -m venv $VenvDir    # the newest Python 3 installed; 3.11 or newer is checked below
    } else {
        & python -m venv $VenvDir
    }
    if ($LASTEXITCODE -ne 0 -or -not (Test-Path -LiteralPath $VenvPython)) {
        throw 'Could not create .venv: install Python 3.11 or newer from python.org (tick "py launcher").'
    }
} else {
    Write-Ok '.venv exists'
}
& $VenvPython -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'
if ($LASTEXITCODE -ne 0) { throw "$VenvPython is older than Python 3.11: delete .venv and install 3.11+." }

if (-not $SkipPip) {
    Write-Step 'Installing the bot into .venv (pip install -e .)'
    & $VenvPython -m pip install --upgrade pip
    if ($LASTEXITCODE -ne 0) { throw 'pip upgrade failed' }
    & $VenvPython -m pip install -e $ProjectDir
    if ($LASTEXITCODE -ne 0) { throw 'pip install -e . failed' }
}

# --- 2. .env ----------------------------------------------------------------------------------
$EnvPath = Join-Path $BotDir '.env'
if (-not (Test-Path -LiteralPath $EnvPath)) {
    $text = Get-Content -LiteralPath (Join-Path $ProjectDir '.env.example') -Raw -Encoding UTF8
    if ($Name -ne '') {
        # Each bot needs its own client id on the Gateway and its own health port; STATE_DIR and
        # LOG_FILE are relative, so they already point into instances\NAME.
        $others = @(Join-Path $ProjectDir '.env') + @(Get-ChildItem -Path (Join-Path $ProjectDir 'instances\*\.env') -ErrorAction SilentlyContinue | ForEach-Object { $_.FullName })
        $others = @($others | Where-Object { Test-Path -LiteralPath $_ })
        $clientId = Get-NextFree 'IBKR_CLIENT_ID' 1 10 $others
        $healthPort = Get-NextFree 'HEALTH_PORT' 8787 1 $others
        $text = $text -replace '(?m)^IBKR_CLIENT_ID=[^\r\n]*', "IBKR_CLIENT_ID=$clientId"
        $text = $text -replace '(?m)^HEALTH_PORT=[^\r\n]*', "HEALTH_PORT=$healthPort"
        Write-Ok "instance '$Name': IBKR_CLIENT_ID=$clientId, HEALTH_PORT=$healthPort"
    }
    Set-Content -LiteralPath $EnvPath -Value $text -Encoding UTF8
    Write-Warn ".env created from .env.example: set OPERATOR_ID and DISCORD_WEBHOOK_URL in $EnvPath"
} else {
    Write-Ok '.env exists (left as it is)'
}
$DotEnv = Read-DotEnv $EnvPath
if ($GatewayHost -eq '') { $GatewayHost = if ($DotEnv.ContainsKey('IBKR_HOST')) { $DotEnv['IBKR_HOST'] } else { '127.0.0.1' } }
if ($GatewayPort -eq 0) { $GatewayPort = if ($DotEnv.ContainsKey('IBKR_PORT')) { [int]$DotEnv['IBKR_PORT'] } else { 4002 } }

# --- 3. settings check --------------------------------------------------------------------------
Write-Step 'python -m runtime --check'
Push-Location $BotDir
try {
    & $VenvPython -m runtime --check
    if ($LASTEXITCODE -eq 0) { Write-Ok 'settings and gameplan valid' }
    else { Write-Warn "--check exited ${LASTEXITCODE}: fix the line it names (a missing gameplan is expected before the first morning)" }
} finally {
    Pop-Location
}

# --- 4. local start time -------------------------------------------------------------------------
$start = Get-LocalTimeOfEastern $StartEt
$restart = Get-LocalTimeOfEastern $GatewayRestartEt
$StartBoundary = $start.Local.ToString('yyyy-MM-dd', $Invariant) + 'T' + $start.Local.ToString('HH:mm:ss', $Invariant)
$AutoRestartLocal = $restart.Local.ToString('hh:mm tt', $Invariant)
$EtDays = @('Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday')
$AllDays = @('Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday')
$LocalDays = foreach ($d in $EtDays) { $AllDays[([array]::IndexOf($AllDays, $d) + $start.DayShift + 7) % 7] }
Write-Step ("06:00 America/New_York is {0} local time on {1} ({2})" -f `
    $start.Local.ToString('HH:mm', $Invariant), ($LocalDays -join ', '), [System.TimeZoneInfo]::Local.Id)

# --- 5. the task -------------------------------------------------------------------------------
$xml = New-Object System.Xml.XmlDocument
$xml.PreserveWhitespace = $false
$xml.Load($TaskXmlPath)
$ns = New-Object System.Xml.XmlNamespaceManager($xml.NameTable)
$ns.AddNamespace('t', $TaskNs)
function Set-TaskValue([string]$XPath, [string]$Value) {
    $node = $xml.SelectSingleNode($XPath, $ns)
    if ($null -eq $node) { throw "task_scheduler.xml has no $XPath" }
    $node.InnerText = $Value
}
$UserId = "$env:USERDOMAIN\$env:USERNAME"
Set-TaskValue '/t:Task/t:RegistrationInfo/t:Date' ((Get-Date).ToString('yyyy-MM-ddTHH:mm:ss', $Invariant))
Set-TaskValue '/t:Task/t:RegistrationInfo/t:Author' $UserId
Set-TaskValue '/t:Task/t:Triggers/t:CalendarTrigger/t:StartBoundary' $StartBoundary
Set-TaskValue '/t:Task/t:Triggers/t:LogonTrigger/t:UserId' $UserId
Set-TaskValue '/t:Task/t:Principals/t:Principal/t:UserId' $UserId
Set-TaskValue '/t:Task/t:Actions/t:Exec/t:Command' $VenvPython
Set-TaskValue '/t:Task/t:Actions/t:Exec/t:Arguments' '-m runtime'
Set-TaskValue '/t:Task/t:Actions/t:Exec/t:WorkingDirectory' $BotDir
$daysNode = $xml.SelectSingleNode('/t:Task/t:Triggers/t:CalendarTrigger/t:ScheduleByWeek/t:DaysOfWeek', $ns)
$daysNode.RemoveAll()
foreach ($d in $AllDays[1..6] + $AllDays[0]) {   # schema order: Monday ... Sunday
    if ($LocalDays -contains $d) { [void]$daysNode.AppendChild($xml.CreateElement($d, $TaskNs)) }
}

$StateDir = Join-Path $BotDir 'state'
New-Item -ItemType Directory -Force -Path $StateDir | Out-Null
$Rendered = Join-Path $StateDir 'task_scheduler.rendered.xml'
$xml.Save($Rendered)   # UTF-8, as declared; for "schtasks /Create /XML" or the GUI's Import
Write-Step "Registering task '$TaskName' (rendered copy: $Rendered)"
Register-ScheduledTask -TaskName $TaskName -Xml $xml.OuterXml -Force | Out-Null
$info = Get-ScheduledTaskInfo -TaskName $TaskName
Write-Ok "task registered; next run $($info.NextRunTime)"

# --- 5b. IBC + IB Gateway at logon -------------------------------------------------------------
if ($IbcPath -ne '') {
    $StartGateway = Join-Path $IbcPath 'StartGateway.bat'
    if (-not (Test-Path -LiteralPath $StartGateway)) {
        throw "No StartGateway.bat in ${IbcPath}: install IBC there first (README_DEPLOYMENT.md, section 2)."
    }
    $bat = Get-Content -LiteralPath $StartGateway -Encoding ASCII
    $vrsn = ($bat | Select-String -Pattern '^set TWS_MAJOR_VRSN=(\d+)' | Select-Object -First 1)
    if ($null -eq $vrsn) { Write-Warn "StartGateway.bat sets no TWS_MAJOR_VRSN: set it to your Gateway's major version (10.37 -> 1037)" }
    else { Write-Ok "StartGateway.bat starts Gateway major version $($vrsn.Matches[0].Groups[1].Value)" }
    $gw = New-Object System.Xml.XmlDocument
    $gw.PreserveWhitespace = $false
    $gw.Load($GatewayXmlPath)
    $gwNs = New-Object System.Xml.XmlNamespaceManager($gw.NameTable)
    $gwNs.AddNamespace('t', $TaskNs)
    foreach ($pair in @(
            @('/t:Task/t:RegistrationInfo/t:Date', (Get-Date).ToString('yyyy-MM-ddTHH:mm:ss', $Invariant)),
            @('/t:Task/t:RegistrationInfo/t:Author', $UserId),
            @('/t:Task/t:Triggers/t:LogonTrigger/t:UserId', $UserId),
            @('/t:Task/t:Principals/t:Principal/t:UserId', $UserId),
            @('/t:Task/t:Actions/t:Exec/t:Command', $StartGateway),
            @('/t:Task/t:Actions/t:Exec/t:Arguments', '/INLINE'),
            @('/t:Task/t:Actions/t:Exec/t:WorkingDirectory', $IbcPath))) {
        $node = $gw.SelectSingleNode($pair[0], $gwNs)
        if ($null -eq $node) { throw "gateway_task.xml has no $($pair[0])" }
        $node.InnerText = $pair[1]
    }
    $gw.Save((Join-Path $StateDir 'gateway_task.rendered.xml'))
    Write-Step "Registering task '$GatewayTaskName' (IBC + IB Gateway at logon)"
    Register-ScheduledTask -TaskName $GatewayTaskName -Xml $gw.OuterXml -Force | Out-Null
    Write-Ok "IBC starts at every logon of $UserId; start it now with: Start-ScheduledTask -TaskName $GatewayTaskName"
}

# --- 6. the Gateway port ------------------------------------------------------------------------
Write-Step "Checking IB Gateway at ${GatewayHost}:$GatewayPort"
if (Test-NetConnection -ComputerName $GatewayHost -Port $GatewayPort -InformationLevel Quiet -WarningAction SilentlyContinue) {
    Write-Ok 'the Gateway API port answers'
} else {
    Write-Warn "nothing listens on ${GatewayHost}:$GatewayPort. Start IB Gateway through IBC (paper: 4002). The bot retries by itself, but it cannot trade without it."
}

# --- 7. IBC ---------------------------------------------------------------------------------------
Write-Step "IBC AutoRestartTime for this machine: $AutoRestartLocal (16:30 America/New_York)"
if ($IbcConfigPath -ne '') {
    if (-not (Test-Path -LiteralPath $IbcConfigPath)) {
        New-Item -ItemType Directory -Force -Path (Split-Path -Parent $IbcConfigPath) | Out-Null
        $text = Get-Content -LiteralPath $IbcTemplatePath -Raw -Encoding UTF8
        $text = $text -replace '(?m)^AutoRestartTime=[^\r\n]*', "AutoRestartTime=$AutoRestartLocal"
        Set-Content -LiteralPath $IbcConfigPath -Value $text -Encoding ASCII
        Write-Warn "created $IbcConfigPath from ibc_config.ini: add IbLoginId/IbPassword there (never in the repository)"
    } else {
        $ibc = Read-DotEnv $IbcConfigPath
        $have = if ($ibc.ContainsKey('AutoRestartTime')) { $ibc['AutoRestartTime'] } else { '' }
        if ($have -ne $AutoRestartLocal) { Write-Warn "IBC AutoRestartTime is '$have', expected '$AutoRestartLocal'" }
        else { Write-Ok 'IBC AutoRestartTime matches 16:30 ET' }
        if ($ibc.ContainsKey('TradingMode') -and $ibc['TradingMode'] -ne 'paper') {
            Write-Warn "IBC TradingMode is '$($ibc['TradingMode'])': the bot's paper deployment expects 'paper'"
        }
        $dryRun = (-not $DotEnv.ContainsKey('DRY_RUN')) -or ($DotEnv['DRY_RUN'] -match '^(?i)(true|1|yes)$')
        $readOnly = $ibc.ContainsKey('ReadOnlyApi') -and $ibc['ReadOnlyApi'] -eq 'yes'
        if (-not $dryRun -and $readOnly) {
            Write-Warn 'DRY_RUN=false but IBC ReadOnlyApi=yes: the Gateway will refuse paper orders. Set ReadOnlyApi=no and restart the Gateway.'
        }
    }
}

$BotEnv = Read-DotEnv $EnvPath
$HealthPort = if ($BotEnv.ContainsKey('HEALTH_PORT')) { $BotEnv['HEALTH_PORT'] } else { '8787' }
Write-Host ''
Write-Host 'Done. Start it now with:  Start-ScheduledTask -TaskName' $TaskName
Write-Host "Logs: $BotDir\logs\crucible_bot.log   Health: http://127.0.0.1:$HealthPort/health"
