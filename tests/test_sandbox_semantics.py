"""What a program means in the sandbox: results, output, asyncio, errors, fresh state."""

from __future__ import annotations

import pytest


async def test_last_expression_is_the_result(run):
    r = await run("x = 20\nx * 2 + 2")
    assert r.ok and r.result == 42


async def test_top_level_return_wins_over_later_code(run):
    r = await run("if True:\n    return {'a': 1}\n99")
    assert r.ok and r.result == {"a": 1}


async def test_no_return_and_no_expression_gives_none_and_keeps_print(run):
    r = await run("x = 1\nprint('hello', x)")
    assert r.ok and r.result is None and r.stdout == "hello 1\n"


async def test_top_level_await_with_gather_of_tool_calls(run):
    r = await run("vals = await asyncio.gather(*[echo(i) for i in range(10)])\nsum(vals)")
    assert r.ok and r.result == 45 and r.stats.tool_calls == 10


async def test_asyncio_run_in_code_without_top_level_await(run):
    code = """
import asyncio
async def main():
    a = await echo(1)
    b = await asyncio.gather(echo(2), echo(3))
    return a + sum(b)
asyncio.run(main())
"""
    r = await run(code)
    assert r.ok and r.result == 6, r.error


async def test_create_task_wait_for_sleep_and_as_completed(run):
    code = """
import asyncio
t = asyncio.create_task(sleep_ms(30, tag="task"))
await asyncio.sleep(0.01)
try:
    await asyncio.wait_for(sleep_ms(2000), timeout=0.05)
    timed_out = False
except asyncio.TimeoutError:
    timed_out = True
order = []
for fut in asyncio.as_completed([sleep_ms(60, tag="slow"), sleep_ms(5, tag="fast")]):
    order.append(await fut)
return [await t, timed_out, order]
"""
    r = await run(code)
    assert r.ok, r.error
    assert r.result == ["task", True, ["fast", "slow"]]


async def test_taskgroup_and_event_work(run):
    code = """
import asyncio
ev = asyncio.Event()
async def setter():
    await asyncio.sleep(0.01)
    ev.set()
async with asyncio.TaskGroup() as tg:
    tg.create_task(setter())
    waiter = tg.create_task(ev.wait())
waiter.result()
"""
    r = await run(code)
    assert r.ok and r.result is True, r.error


async def test_namespaced_function_and_positional_arguments(run):
    r = await run("await demo.add(2, b=3)")
    assert r.ok and r.result == 5


async def test_results_allow_attribute_access_and_to_dict(run):
    r = await run(
        "o = await echo({'salary': 10, 'co': {'name': 'A'}})\n[o.salary, o.co.name, o.to_dict()]"
    )
    assert r.ok and r.result == [10, "A", {"salary": 10, "co": {"name": "A"}}]


async def test_tool_error_is_catchable_with_details(run):
    code = """
try:
    await fail("no such user")
except ToolError as e:
    return [e.message, e.server, e.tool, e.kind]
"""
    r = await run(code)
    assert r.ok and r.result == ["no such user", "demo", "fail", "ToolError"]


async def test_uncaught_tool_error_reports_type_and_user_line(run):
    r = await run("x = 1\n\nawait fail('broken')\n")
    assert not r.ok
    assert r.error.type == "ToolError" and r.error.message == "broken"
    assert r.error.line == 3
    assert 'File "<code>", line 3' in r.error.traceback
    assert "sandbox_guest" not in r.error.traceback


async def test_traceback_shows_submitted_code_lines_through_nested_functions(run):
    code = (
        "def inner(d):\n    return d['missing']\n\ndef outer():\n    return inner({})\n\nouter()\n"
    )
    r = await run(code)
    assert r.error.type == "KeyError"
    assert r.error.line == 2
    tb = r.error.traceback
    assert "line 7, in <module>" in tb and "line 5, in outer" in tb and "line 2, in inner" in tb
    assert "return d['missing']" in tb


async def test_syntax_error_reports_line_and_column(run):
    r = await run("x = 1\ny = (2 +\nz = 3 ^^ 4\n")
    assert r.error.type == "SyntaxError"
    assert r.error.line in (2, 3)
    assert "line" in r.error.message and "column" in r.error.message
    assert r.error.details.get("column")


async def test_wrong_arguments_raise_type_error_naming_the_parameter(run):
    # Written out, the pre-check refuses them before anything runs...
    r = await run("await demo.add(1, c=2)")
    assert r.error.type == "CheckError" and "'c'" in r.error.message and "a, b" in r.error.message
    # ...and passed dynamically, the call itself does.
    r = await run("kw = {'c': 2}\nawait demo.add(1, **kw)")
    assert r.error.type == "TypeError" and "'c'" in r.error.message and "a, b" in r.error.message
    r = await run("args = [1]\nawait demo.add(*args)")
    assert r.error.type == "TypeError" and "'b'" in r.error.message


async def test_forgotten_await_is_explained(run):
    r = await run("echo(1)")
    assert r.error.type == "TypeError" and "await" in r.error.message


async def test_unhandled_deadlock_is_reported_not_hung(run):
    r = await run("import asyncio\nawait asyncio.Future()", timeout_s=5)
    assert r.error.type == "DeadlockError"
    assert r.stats.duration_ms < 4000


async def test_state_does_not_leak_between_executions(run):
    r1 = await run(
        "import json\njson.leaked = 1\nglobal_var = 5\nimport sys\nsys.modules['x_leak'] = 1"
    )
    assert r1.ok
    r2 = await run(
        "import json, sys\n[hasattr(json, 'leaked'), 'global_var' in dir(), 'x_leak' in sys.modules]"
    )
    assert r2.ok and r2.result == [False, False, False]


async def test_random_differs_between_executions(run):
    a = await run("import random\n[random.random() for _ in range(3)]")
    b = await run("import random\n[random.random() for _ in range(3)]")
    assert a.ok and b.ok and a.result != b.result


async def test_non_json_results_are_converted(run):
    r = await run(
        "import datetime, decimal\n{'s': {3, 1, 2}, 'd': datetime.date(2024, 1, 2), 't': (1, 2), 'o': object}"
    )
    assert r.ok
    assert r.result["s"] == [1, 2, 3] and r.result["d"] == "2024-01-02" and r.result["t"] == [1, 2]
    assert "object" in r.result["o"]


async def test_tools_search_and_describe(run):
    r = await run("[tools.search('add numbers')[0], tools.describe('demo.add'), tools.list()]")
    assert r.ok, r.error
    first, described, listed = r.result
    assert first.startswith("demo.add(a, b)")
    assert "Add two numbers." in described
    assert "echo" in listed and "demo.add" in listed


async def test_system_exit_is_reported_not_fatal(run):
    r = await run("raise SystemExit(3)")
    assert r.error.type == "SystemExit"
    assert (await run("1")).result == 1


@pytest.mark.parametrize("code", ["", "# only a comment", "pass"])
async def test_empty_programs_give_none(run, code):
    r = await run(code)
    assert r.ok and r.result is None
