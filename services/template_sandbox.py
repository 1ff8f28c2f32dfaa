"""A Jinja sandbox whose renders are bounded in time and memory, for templates an administrator writes.

Jinja's own sandbox stops attribute tricks, not work: `range(10**9)`, `owner * 100000000`, nested loops or
a recursive macro hold a worker for minutes and take gigabytes. Here every render gets a budget of steps
(loop turns, calls, operators, and a share of every value's size), no value may grow past MAX_TEXT
characters (or items), the output stops at MAX_TEXT, and only a short list of filters, methods and
functions exists: the ones a message needs, none of which can build a large value from a small one.
"""

import contextvars
import functools
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import StrictUndefined, filters, nodes, pass_context
from jinja2.compiler import CodeGenerator
from jinja2.runtime import LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import Joiner, Namespace

MAX_TEXT = 20_000  # characters of any string, items of any list, characters of a render's output
MAX_STEPS = 100_000  # work units of one render
MAX_RANGE = 10_000
MAX_INT_BITS = 256
STEP_CHARS = 100  # a value costs one step per this many characters, so copying large strings costs too
_FORMAT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d*))?")
SAFE_STR_METHODS = frozenset({
    "capitalize", "casefold", "count", "endswith", "find", "index", "isalnum", "isalpha", "isdigit",
    "islower", "isspace", "istitle", "isupper", "lower", "lstrip", "partition", "removeprefix",
    "removesuffix", "rfind", "rindex", "rpartition", "rsplit", "rstrip", "split", "splitlines",
    "startswith", "strip", "swapcase", "title", "upper",
})
SAFE_DICT_METHODS = frozenset({"get", "items", "keys", "values"})


class TooMuchWork(SecurityError):
    """A render went past one of the sandbox's limits; the message says which."""


class _Budget:
    def __init__(self) -> None:
        self.left = MAX_STEPS

    def spend(self, steps: int) -> None:
        self.left -= steps
        if self.left < 0:
            raise TooMuchWork(f"it does too much work (more than {MAX_STEPS:,} steps): "
                              "remove loops or make them shorter")


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("template_budget", default=None)


def _spend(steps: int = 1) -> None:
    """Charge the current render (none while Jinja folds constants at compile time: sizes still apply)."""
    if (budget := _budget.get()) is not None:
        budget.spend(steps)


def measure(value: Any, limit: int = MAX_TEXT) -> int:
    """About how many characters `value` becomes as text.

    Raise TooMuchWork past `limit` without building it.
    """
    size, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            size += len(item)
        elif isinstance(item, list | tuple | set | frozenset):
            size += 2 + 2 * len(item)
            stack.extend(item)
        elif isinstance(item, dict):
            size += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, int) and item.bit_length() > MAX_INT_BITS:
            raise TooMuchWork(f"a number is larger than {MAX_INT_BITS} bits")
        else:
            size += 8
        if size > limit:
            raise TooMuchWork(f"a value would be longer than {limit:,} characters")
    _spend(1 + size // STEP_CHARS)
    return size


def _counted(values: Iterable) -> Iterator:
    """Iterate, charging each item and its size: a loop or a filter over a sequence costs what it does."""
    if isinstance(values, str):
        _spend(1 + len(values) // STEP_CHARS)
        yield from values
        return
    total = 0
    for item in values:
        total += measure(item)
        if total > MAX_TEXT * STEP_CHARS:
            raise TooMuchWork("a loop or filter goes over too much data")
        _spend()
        yield item


@pass_context  # context-bound: Jinja never folds it into a constant at compile time
def _loop_items(context, values: Iterable) -> Iterator:
    return _counted(values)


def bounded_range(*args: int) -> range:
    """range() of at most MAX_RANGE numbers."""
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise TooMuchWork(f"range() may count to {MAX_RANGE:,} at most")
    return numbers


def _check_repeat(left: Any, right: Any) -> None:
    for sequence, times in ((left, right), (right, left)):
        sequence_times = isinstance(sequence, str | list | tuple) and isinstance(times, int)
        if sequence_times and len(sequence) * max(times, 0) > MAX_TEXT:
            raise TooMuchWork(f"a repeated value would be longer than {MAX_TEXT:,} characters")


def _check_power(base: Any, exponent: Any) -> None:
    integers = isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1 and exponent > 0
    if integers and exponent * base.bit_length() > MAX_INT_BITS:
        raise TooMuchWork(f"a number would be larger than {MAX_INT_BITS} bits")


def _check_format(text: Any, args: Any) -> None:
    if not isinstance(text, str):
        return
    for width, precision in _FORMAT_SPEC.findall(text):
        if "*" in (width, precision) or int(width or 0) > MAX_TEXT or int(precision or 0) > MAX_TEXT:
            raise TooMuchWork(f"a % format may pad to {MAX_TEXT:,} characters at most")
    measure([text, args])


def _check_concat(left: Any, right: Any) -> None:
    sequences = isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple)
    if sequences and len(left) + len(right) > MAX_TEXT:
        raise TooMuchWork(f"a joined value would be longer than {MAX_TEXT:,} characters")


_CHECKS: dict[str, Callable[[Any, Any], None]] = {"*": _check_repeat, "**": _check_power, "%": _check_format,
                                                  "+": _check_concat}


def _join(value: Iterable, d: str = "", attribute: str | int | None = None) -> str:
    """The `join` filter, stopping once the result would pass MAX_TEXT."""
    parts, total = [], 0
    for item in _counted(value):
        text = str(item[attribute] if attribute is not None else item)
        total += len(text) + len(d)
        if total > MAX_TEXT:
            raise TooMuchWork(f"join would build more than {MAX_TEXT:,} characters")
        parts.append(text)
    return str(d).join(parts)


def _replace(value: Any, old: str, new: str, count: int | None = None) -> str:
    """The `replace` filter, refusing a result past MAX_TEXT before building it."""
    text, old, new = str(value), str(old), str(new)
    times = text.count(old) if count is None or count < 0 else min(count, text.count(old))
    if len(text) + times * (len(new) - len(old)) > MAX_TEXT:
        raise TooMuchWork(f"replace would build more than {MAX_TEXT:,} characters")
    return text.replace(old, new, -1 if count is None else count)


def _sized(function: Callable) -> Callable:
    """A filter whose arguments are measured (and charged) before it runs, iterables counted as they go."""

    @functools.wraps(function)  # keeps Jinja's pass_* marker
    def run(*args: Any, **kwargs: Any) -> Any:
        args = tuple(_counted(arg) if isinstance(arg, Iterator) else arg for arg in args)
        measure([args, kwargs])
        return function(*args, **kwargs)

    return run


_SCALAR_FILTERS = ("abs", "capitalize", "default", "d", "e", "escape", "float", "forceescape", "int",
                   "length", "count", "lower", "round", "safe", "string", "striptags", "title", "trim",
                   "truncate", "upper", "urlencode", "wordcount", "first", "last", "list", "max", "min",
                   "reverse", "sort", "unique")
FILTERS: dict[str, Callable] = {name: _sized(filters.FILTERS[name]) for name in _SCALAR_FILTERS}
FILTERS |= {"join": _join, "replace": _replace, "_loop_items": _loop_items}


class _Compiler(CodeGenerator):
    """Jinja's code generator, but `a ~ b` goes through the environment so its size is checked."""

    def visit_Concat(self, node: nodes.Concat, frame) -> None:
        self.write("environment.concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Sandboxed Jinja with a work budget, size limits and short lists of filters, methods and functions."""

    code_generator_class = _Compiler
    intercepted_binops = frozenset({"*", "**", "%", "+", "-", "/", "//"})

    def __init__(self) -> None:
        super().__init__(autoescape=False, undefined=StrictUndefined, finalize=self._finalize)
        self.filters = dict(FILTERS)
        self.globals = {"range": bounded_range, "dict": dict, "namespace": Namespace, "joiner": Joiner}

    def _parse(self, source, name, filename):
        """Parse, then route every for loop's sequence through _loop_items, which charges each turn."""
        template = super()._parse(source, name, filename)
        for loop in template.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, "_loop_items", [], [], None, None, lineno=loop.lineno)
        return template

    def render(self, template, context: dict[str, Any]) -> str:
        """Render within one budget; stop once the output passes MAX_TEXT characters."""
        token = _budget.set(_Budget())
        try:
            out, size = [], 0
            for chunk in template.generate(context):
                size += len(chunk)
                if size > MAX_TEXT:
                    raise TooMuchWork(f"the text would be longer than {MAX_TEXT:,} characters")
                out.append(chunk)
            return "".join(out)
        finally:
            _budget.reset(token)

    def _finalize(self, value: Any) -> Any:
        measure(value)
        return value

    def concat(self, parts: tuple) -> str:
        """`a ~ b ~ …`, measured before the text is built."""
        measure(parts)
        return "".join(map(str, parts))

    def call_binop(self, context, operator_name: str, left: Any, right: Any) -> Any:
        """Apply an operator once its result is known to stay small."""
        _spend()
        if (check := _CHECKS.get(operator_name)) is not None:
            check(left, right)
        result = self.binop_table[operator_name](left, right)
        measure(result)
        return result

    # The first parameters are named as in Jinja's own signature.
    def call(__self, __context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        """Call a macro, a loop, one of the few globals or a harmless str/dict method; nothing else."""
        _spend()
        if not _callable(__obj):
            raise SecurityError(f"{getattr(__obj, '__name__', type(__obj).__name__)}() cannot be used in a "
                                "message template")
        if isinstance(__obj, LoopContext) and args:  # a recursive loop's next level is counted like a loop
            args = (_counted(args[0]), *args[1:])
        measure([args, kwargs])
        result = __context.call(__obj, *args, **kwargs)
        measure(result)
        return result


_GLOBAL_CALLABLES = (bounded_range, dict, Namespace, Joiner)


def _callable(obj: Any) -> bool:
    if isinstance(obj, Macro | LoopContext | Joiner) or obj in _GLOBAL_CALLABLES:
        return True
    owner, name = getattr(obj, "__self__", None), getattr(obj, "__name__", "")
    if isinstance(owner, str):
        return name in SAFE_STR_METHODS
    if isinstance(owner, dict):
        return name in SAFE_DICT_METHODS
    return isinstance(owner, LoopContext) and name in ("cycle", "changed")

