"""The Task Scheduler tasks: valid against Microsoft's schema, in its element order, right values.

There is no Task Scheduler here, so the tasks are checked against the schema itself:
TaskSchedulerV2Schema.xsd (XSD 1.1, vendored under tests/deployment/task_scheduler with its MIT
licence) validated with xmlschema, plus the declaration order element by element. In the schema
taskType, settingsType and most inner types are xs:all groups (any order), but every trigger is
an xs:sequence: Repetition, StartBoundary, EndBoundary, ExecutionTimeLimit, Enabled (the base
trigger), then the trigger's own elements. That is the order of a task Windows itself exports;
an earlier version of this test held the file to a wrong order (Enabled first) and so blessed a
task Windows refuses. Holding every level to the declaration order is stricter than the schema,
and catches any element that is not in the schema at all.
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from tests.harness import REPO

TASK_XML = REPO / "deployment" / "windows" / "task_scheduler.xml"
GATEWAY_XML = REPO / "deployment" / "windows" / "gateway_task.xml"
XSD = Path(__file__).resolve().parent / "task_scheduler" / "TaskSchedulerV2Schema.xsd"
SHARED_XSD = REPO.parent / "shared" / "reference" / "task_scheduler" / XSD.name
NS = "http://schemas.microsoft.com/windows/2004/02/mit/task"
Q = f"{{{NS}}}"

# taskType (xs:all)
TASK_CHILDREN = ["RegistrationInfo", "Triggers", "Settings", "Data", "Principals", "Actions"]
# registrationInfoType (xs:all)
REGISTRATION_CHILDREN = ["URI", "SecurityDescriptor", "Source", "Date", "Author", "Version",
                         "Description", "Documentation"]
# settingsType (xs:all), in declaration order
SETTINGS_CHILDREN = [
    "AllowStartOnDemand", "RestartOnFailure", "MultipleInstancesPolicy",
    "DisallowStartIfOnBatteries", "StopIfGoingOnBatteries", "AllowHardTerminate",
    "StartWhenAvailable", "NetworkProfileName", "RunOnlyIfNetworkAvailable", "WakeToRun",
    "Enabled", "Hidden", "DeleteExpiredTaskAfter", "IdleSettings", "NetworkSettings",
    "ExecutionTimeLimit", "Priority", "RunOnlyIfIdle", "UseUnifiedSchedulingEngine",
    "DisallowStartOnRemoteAppSession",
]
# triggerBaseType (xs:sequence), then calendarTriggerType's extension (xs:sequence + xs:choice)
TRIGGER_BASE_CHILDREN = ["Repetition", "StartBoundary", "EndBoundary", "ExecutionTimeLimit",
                         "Enabled"]
CALENDAR_TRIGGER_CHILDREN = [*TRIGGER_BASE_CHILDREN, "RandomDelay", "ScheduleByDay",
                             "ScheduleByWeek", "ScheduleByMonth", "ScheduleByMonthDayOfWeek"]
# logonTriggerType: the base, then UserId, Delay (xs:sequence)
LOGON_TRIGGER_CHILDREN = [*TRIGGER_BASE_CHILDREN, "UserId", "Delay"]
SCHEDULE_CHOICE = {"ScheduleByDay", "ScheduleByWeek", "ScheduleByMonth",
                   "ScheduleByMonthDayOfWeek"}
REPETITION_CHILDREN = ["Interval", "Duration", "StopAtDurationEnd"]
WEEKLY_CHILDREN = ["WeeksInterval", "DaysOfWeek"]
DAYS_CHILDREN = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
RESTART_CHILDREN = ["Interval", "Count"]
PRINCIPAL_CHILDREN = ["UserId", "LogonType", "GroupId", "DisplayName", "RunLevel",
                      "ProcessTokenSidType", "RequiredPrivileges"]
EXEC_CHILDREN = ["Command", "Arguments", "WorkingDirectory"]

_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def duration(text: str | None) -> dt.timedelta:
    """An xs:duration of the forms Task Scheduler uses (PnDTnHnMnS)."""
    assert text is not None
    m = _DURATION.match(text)
    assert m is not None and text not in ("P", "PT"), f"not a duration: {text!r}"
    d, h, mi, s = (int(x) if x else 0 for x in m.groups())
    return dt.timedelta(days=d, hours=h, minutes=mi, seconds=s)


@pytest.fixture(scope="module")
def task() -> ET.Element:
    return ET.parse(TASK_XML).getroot()


@pytest.fixture(scope="module")
def gateway_task() -> ET.Element:
    return ET.parse(GATEWAY_XML).getroot()


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema11:
    return xmlschema.XMLSchema11(str(XSD))


def local(el: ET.Element) -> str:
    assert el.tag.startswith(Q), f"{el.tag} is outside the task namespace"
    return el.tag[len(Q):]


def child(el: ET.Element, path: str) -> ET.Element:
    found = el.find("/".join(Q + p for p in path.split("/")))
    assert found is not None, f"missing {path}"
    return found


def text(el: ET.Element, path: str) -> str:
    value = child(el, path).text
    assert value is not None, f"{path} is empty"
    return value.strip()


def assert_schema_order(el: ET.Element, declared: list[str]) -> None:
    names = [local(c) for c in el]
    unknown = [n for n in names if n not in declared]
    assert not unknown, f"<{local(el)}> has elements the schema does not define: {unknown}"
    assert len(names) == len(set(names)), f"<{local(el)}> repeats an element: {names}"
    positions = [declared.index(n) for n in names]
    assert positions == sorted(positions), f"<{local(el)}> children out of order: {names}"


# --- well-formed, namespace, version, encoding -------------------------------------------------

@pytest.mark.parametrize("path", [TASK_XML, GATEWAY_XML], ids=lambda p: p.name)
def test_task_xml_is_well_formed_utf8_with_a_matching_declaration(path: Path) -> None:
    raw = path.read_bytes()
    assert not raw.startswith(b"\xff\xfe") and not raw.startswith(b"\xef\xbb\xbf")
    raw.decode("ascii")  # ASCII is UTF-8 whatever tool reads it
    assert raw.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    ET.fromstring(raw)


def test_root_is_a_version_1_3_task_in_the_task_namespace(task: ET.Element,
                                                          gateway_task: ET.Element) -> None:
    for root in (task, gateway_task):
        assert root.tag == Q + "Task"
        assert root.get("version") == "1.3"


# --- the published schema ---------------------------------------------------------------------

@pytest.mark.parametrize("path", [TASK_XML, GATEWAY_XML], ids=lambda p: p.name)
def test_task_xml_is_valid_against_the_task_scheduler_schema(
        schema: xmlschema.XMLSchema11, path: Path) -> None:
    schema.validate(str(path))


def test_the_schema_refuses_the_trigger_order_the_file_used_to_have(
        schema: xmlschema.XMLSchema11) -> None:
    """Enabled before StartBoundary, Repetition after it: what Windows refused."""
    source = TASK_XML.read_text(encoding="utf-8")
    root = ET.fromstring(source.encode())
    trigger = child(root, "Triggers/CalendarTrigger")
    order = {"Enabled": 0, "StartBoundary": 1, "Repetition": 2}
    moved = sorted((c for c in trigger if local(c) in order), key=lambda c: order[local(c)])
    for c in moved:
        trigger.remove(c)
    for i, c in enumerate(moved):
        trigger.insert(i, c)
    assert [local(c) for c in trigger][:3] == ["Enabled", "StartBoundary", "Repetition"]
    assert not schema.is_valid(ET.tostring(root, encoding="unicode"))
    with pytest.raises(AssertionError, match="out of order"):
        assert_schema_order(trigger, CALENDAR_TRIGGER_CHILDREN)


def test_the_vendored_schema_is_the_published_one() -> None:
    if not SHARED_XSD.exists():
        pytest.skip("the shared reference folder is not next to this checkout")
    assert XSD.read_bytes() == SHARED_XSD.read_bytes()


# --- the schema's element order, level by level ------------------------------------------------

def test_every_element_is_in_the_schema_and_in_declaration_order(task: ET.Element) -> None:
    assert_schema_order(task, TASK_CHILDREN)
    assert [local(c) for c in task][-1] == "Actions"  # the one required part
    assert_schema_order(child(task, "RegistrationInfo"), REGISTRATION_CHILDREN)
    assert_schema_order(child(task, "Settings"), SETTINGS_CHILDREN)
    assert_schema_order(child(task, "Settings/RestartOnFailure"), RESTART_CHILDREN)
    triggers = list(child(task, "Triggers"))
    assert [local(t) for t in triggers] == ["CalendarTrigger", "LogonTrigger"]
    trigger = triggers[0]
    assert_schema_order(trigger, CALENDAR_TRIGGER_CHILDREN)
    assert_schema_order(triggers[1], LOGON_TRIGGER_CHILDREN)
    assert sum(local(c) in SCHEDULE_CHOICE for c in trigger) == 1  # xs:choice: exactly one
    assert local(list(trigger)[-1]) in SCHEDULE_CHOICE
    assert_schema_order(child(trigger, "Repetition"), REPETITION_CHILDREN)
    assert_schema_order(child(trigger, "ScheduleByWeek"), WEEKLY_CHILDREN)
    assert_schema_order(child(trigger, "ScheduleByWeek/DaysOfWeek"), DAYS_CHILDREN)
    principals = list(child(task, "Principals"))
    assert [local(p) for p in principals] == ["Principal"]
    assert_schema_order(principals[0], PRINCIPAL_CHILDREN)
    actions = list(child(task, "Actions"))
    assert [local(a) for a in actions] == ["Exec"]
    assert_schema_order(actions[0], EXEC_CHILDREN)


def test_gateway_task_elements_are_in_declaration_order(gateway_task: ET.Element) -> None:
    assert_schema_order(gateway_task, TASK_CHILDREN)
    assert_schema_order(child(gateway_task, "Settings"), SETTINGS_CHILDREN)
    triggers = list(child(gateway_task, "Triggers"))
    assert [local(t) for t in triggers] == ["LogonTrigger"]
    assert_schema_order(triggers[0], LOGON_TRIGGER_CHILDREN)
    assert_schema_order(child(triggers[0], "Repetition"), REPETITION_CHILDREN)


def test_principal_and_action_contexts_match(task: ET.Element, gateway_task: ET.Element) -> None:
    for root in (task, gateway_task):
        principal = child(root, "Principals/Principal")
        assert child(root, "Actions").get("Context") == principal.get("id")


# --- after a reboot at any hour: the Gateway at logon, the bot after it -----------------------

def test_gateway_task_runs_ibc_inline_at_logon_and_brings_it_back(
        gateway_task: ET.Element) -> None:
    logon = child(gateway_task, "Triggers/LogonTrigger")
    assert text(logon, "Enabled") == "true"
    assert text(logon, "UserId") == text(gateway_task, "Principals/Principal/UserId")
    rep = child(logon, "Repetition")
    assert duration(text(rep, "Interval")) == dt.timedelta(minutes=15)
    assert logon.find(Q + "Repetition/" + Q + "Duration") is None   # repeats for ever
    s = child(gateway_task, "Settings")
    assert text(s, "MultipleInstancesPolicy") == "IgnoreNew"       # a running IBC is left alone
    assert duration(text(s, "ExecutionTimeLimit")) == dt.timedelta(0)   # PT0S: no limit
    assert text(s, "DisallowStartIfOnBatteries") == "false"
    assert text(s, "StopIfGoingOnBatteries") == "false"
    exec_ = child(gateway_task, "Actions/Exec")
    assert text(exec_, "Command").lower().endswith("\\startgateway.bat")
    assert text(exec_, "Arguments") == "/INLINE"   # IBC: required under Task Scheduler
    assert text(child(gateway_task, "Principals/Principal"), "LogonType") == "InteractiveToken"


def test_bot_task_starts_at_logon_after_the_gateway(task: ET.Element,
                                                     gateway_task: ET.Element) -> None:
    logon = child(task, "Triggers/LogonTrigger")
    assert text(logon, "Enabled") == "true"
    assert text(logon, "UserId") == text(task, "Principals/Principal/UserId")
    gateway_delay = gateway_task.find(f"{Q}Triggers/{Q}LogonTrigger/{Q}Delay")
    gateway_after = duration(gateway_delay.text) if gateway_delay is not None else dt.timedelta(0)
    assert duration(text(logon, "Delay")) > gateway_after


# --- the values the issue asks for --------------------------------------------------------------

def test_trigger_starts_at_06_00_on_weekdays(task: ET.Element) -> None:
    trigger = child(task, "Triggers/CalendarTrigger")
    assert text(trigger, "Enabled") == "true"
    start = dt.datetime.fromisoformat(text(trigger, "StartBoundary"))
    # local wall-clock time, no UTC offset: install.ps1 writes the local time of 06:00 ET
    assert start.tzinfo is None
    assert start.time() == dt.time(6, 0)
    assert text(trigger, "ScheduleByWeek/WeeksInterval") == "1"
    days = [local(d) for d in child(trigger, "ScheduleByWeek/DaysOfWeek")]
    assert days == ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
    assert start.weekday() < 5


def test_repetition_restarts_a_dead_bot_during_the_trading_day(task: ET.Element) -> None:
    rep = child(task, "Triggers/CalendarTrigger/Repetition")
    interval, length = duration(text(rep, "Interval")), duration(text(rep, "Duration"))
    assert dt.timedelta(minutes=1) <= interval <= dt.timedelta(minutes=30)
    assert interval < length
    # from 06:00 ET it must cover the regular session up to 16:00 ET, and stop before the
    # evening so a deliberate evening stop stays a stop
    assert length == dt.timedelta(hours=10)
    assert text(rep, "StopAtDurationEnd") == "false"  # never stop the bot at the end


def test_settings_have_the_required_values(task: ET.Element) -> None:
    s = child(task, "Settings")
    assert text(s, "StartWhenAvailable") == "true"
    assert text(s, "WakeToRun") == "true"
    assert text(s, "DisallowStartIfOnBatteries") == "false"
    assert text(s, "StopIfGoingOnBatteries") == "false"
    assert text(s, "MultipleInstancesPolicy") == "IgnoreNew"
    assert duration(text(s, "ExecutionTimeLimit")) == dt.timedelta(hours=23)
    assert text(s, "Enabled") == "true"
    assert text(s, "AllowStartOnDemand") == "true"
    restart_interval = duration(text(s, "RestartOnFailure/Interval"))
    assert dt.timedelta(minutes=1) <= restart_interval <= dt.timedelta(days=31)
    assert int(text(s, "RestartOnFailure/Count")) >= 1
    assert 0 <= int(text(s, "Priority")) <= 10


def test_action_runs_python_m_runtime_in_the_project_directory(task: ET.Element) -> None:
    exec_ = child(task, "Actions/Exec")
    command = text(exec_, "Command")
    workdir = text(exec_, "WorkingDirectory")
    assert command.lower().endswith("\\python.exe")
    assert text(exec_, "Arguments") == "-m runtime"
    assert command.lower().startswith(workdir.lower().rstrip("\\") + "\\.venv\\scripts\\")


def test_no_password_is_needed_or_stored(task: ET.Element) -> None:
    principal = child(task, "Principals/Principal")
    assert text(principal, "LogonType") in ("InteractiveToken", "S4U")
    assert text(principal, "RunLevel") == "LeastPrivilege"
    assert "password" not in TASK_XML.read_text(encoding="utf-8").lower()


def test_the_order_check_rejects_what_windows_would_refuse(
        schema: xmlschema.XMLSchema11) -> None:
    """The checks above are only worth something if a broken task fails them."""
    source = TASK_XML.read_text(encoding="utf-8")
    swapped = source.replace(
        "<StartBoundary>2026-01-05T06:00:00</StartBoundary>\n      <Enabled>true</Enabled>",
        "<Enabled>true</Enabled>\n      <StartBoundary>2026-01-05T06:00:00</StartBoundary>")
    assert swapped != source
    trigger = child(ET.fromstring(swapped.encode()), "Triggers/CalendarTrigger")
    with pytest.raises(AssertionError, match="out of order"):
        assert_schema_order(trigger, CALENDAR_TRIGGER_CHILDREN)
    assert not schema.is_valid(swapped)
    misspelt = source.replace("StartWhenAvailable>", "StartWhenAvaliable>")
    assert not schema.is_valid(misspelt)
    settings = child(ET.fromstring(misspelt.encode()), "Settings")
    with pytest.raises(AssertionError, match="does not define"):
        assert_schema_order(settings, SETTINGS_CHILDREN)
