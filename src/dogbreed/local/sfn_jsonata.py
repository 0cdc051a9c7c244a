"""A JSONata evaluator for moto's Step Functions interpreter (pinned to moto 5.2.5).

moto parses `"QueryLanguage": "JSONata"` state machines but leaves its evaluation hook empty
(`moto.stepfunctions.parser.asl.jsonata.jsonata._eval_jsonata`; upstream plugs a JVM bridge in).
This plugs in the pure-Python `jsonata-python` implementation and mends three things on the way:

- moto binds variables and `$states` by prepending `$name := <value>;` declarations to each
  expression, and writes string values as `"value"` without escaping, so a value holding a quote
  or a backslash broke the expression. Here each value is kept aside (normalised through JSON) and
  the declaration reads it back by a content hash, `$name := $__value("<sha1>");`: nothing is
  escaped, the expression stays short, and an expression seen before is not parsed again (the
  pipeline's settings alone are kilobytes, prepended to every expression).
- Step Functions' own JSONata functions `$uuid()` and `$hash(value, algorithm)` are declared by moto
  as stubs that return "not supported"; they are provided for real here.
- Evaluation errors surface as moto's `JSONataException`, which moto turns into
  `States.QueryEvaluationError` as Step Functions does.

`check_moto_internals()` names every moto internal this relies on; `install()` refuses to patch a
moto that changed, and tests/unit/test_pipeline_moto_shim.py runs the self-check.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import uuid
from collections import OrderedDict
from typing import Any, Final

import jsonata
from jsonata.utils import Utils
from moto.stepfunctions.parser.asl.component.intrinsic import jsonata as moto_intrinsics
from moto.stepfunctions.parser.asl.eval import states as moto_states
from moto.stepfunctions.parser.asl.eval import variable_store as moto_variable_store
from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata

# Step Functions' $hash algorithms (the JSONata functions reference of the Step Functions guide).
_HASH_ALGORITHMS: Final[dict[str, str]] = {
    "MD5": "md5",
    "SHA-1": "sha1",
    "SHA-256": "sha256",
    "SHA-384": "sha384",
    "SHA-512": "sha512",
}
# Functions moto declares as stubs; Step Functions implements them.
_NATIVE_FUNCTIONS: Final = ("$uuid", "$hash")
_ORIGINAL_ENCODE: Final = moto_jsonata.encode_jsonata_variable_declarations
# Values of the declarations, by content hash; bounded (an evaluation follows its encoding at once).
_VALUES: OrderedDict[str, Any] = OrderedDict()
_VALUES_LIMIT: Final = 65_536
_LOCK = threading.Lock()


def _sfn_hash(value: Any, algorithm: Any) -> str:
    if not isinstance(value, str) or algorithm not in _HASH_ALGORITHMS:
        raise ValueError(f"$hash takes a string and one of {sorted(_HASH_ALGORITHMS)}")
    return hashlib.new(_HASH_ALGORITHMS[algorithm], value.encode("utf-8")).hexdigest()


def _with_jsonata_nulls(value: Any) -> Any:
    """JSON null as jsonata-python's null (its Python None means "undefined", as a missing path)."""
    if value is None:
        return Utils.NULL_VALUE
    if isinstance(value, dict):
        return {key: _with_jsonata_nulls(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_jsonata_nulls(item) for item in value]
    return value


def _value(token: str) -> Any:
    return _VALUES[token]


@functools.lru_cache(maxsize=4096)
def _compiled(expression: str) -> jsonata.Jsonata:
    compiled = jsonata.Jsonata(expression)
    compiled.register_lambda("uuid", lambda: str(uuid.uuid4()))
    compiled.register_lambda("hash", _sfn_hash)
    compiled.register_lambda("__value", _value)
    return compiled


def evaluate(expression: str) -> Any:
    """Evaluate a self-contained JSONata expression the way moto's JVM bridge would."""
    try:
        with _LOCK:  # one compiled expression may serve several executions' threads
            return _compiled(expression).evaluate(None)
    except Exception as exc:  # every evaluation failure is a query evaluation error in Step Functions
        raise moto_jsonata.JSONataException("UNKNOWN", str(exc)) from exc


def encode_variable_declarations(bindings: dict[str, Any]) -> str:
    """`$name:=$__value("<sha1 of the JSON value>");` for each binding."""
    declarations = []
    for name, value in bindings.items():
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
        token = hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()
        with _LOCK:
            _VALUES[token] = _with_jsonata_nulls(json.loads(text))
            _VALUES.move_to_end(token)
            while len(_VALUES) > _VALUES_LIMIT:
                _VALUES.popitem(last=False)
        declarations.append(f'{name}:=$__value("{token}");')
    return "".join(declarations)


def check_moto_internals() -> list[str]:
    """The moto internals this module patches; returns the mismatches (empty when all is well)."""
    problems: list[str] = []
    if not hasattr(moto_jsonata, "_eval_jsonata"):
        problems.append("moto's jsonata module has no _eval_jsonata hook any more")
    if getattr(moto_jsonata, "_eval_jsonata", None) not in (None, evaluate):
        problems.append("moto now ships its own JSONata evaluator: drop this plug")
    for module in (moto_jsonata, moto_states, moto_variable_store):
        if getattr(module, "encode_jsonata_variable_declarations", None) not in (
            _ORIGINAL_ENCODE,
            encode_variable_declarations,
        ):
            problems.append(f"{module.__name__}.encode_jsonata_variable_declarations changed")
    declarations = getattr(moto_intrinsics, "_DECLARATION_BY_VARIABLE_REFERENCE", None)
    if not isinstance(declarations, dict):
        problems.append("moto's intrinsic JSONata function declarations moved")
    return problems


def install() -> None:
    problems = check_moto_internals()
    if problems:
        raise RuntimeError("moto's JSONata internals changed: " + "; ".join(problems))
    moto_jsonata._eval_jsonata = evaluate
    for module in (moto_jsonata, moto_states, moto_variable_store):
        module.encode_jsonata_variable_declarations = encode_variable_declarations  # type: ignore[attr-defined]
    for name in _NATIVE_FUNCTIONS:
        moto_intrinsics._DECLARATION_BY_VARIABLE_REFERENCE.pop(name, None)


def self_check() -> None:
    """Evaluate what the pipeline relies on; raises if the evaluator does not answer as expected."""
    bindings = encode_variable_declarations(
        {"$v": 'quote " and backslash \\', "$m": [{"MetricName": "a", "Value": 1}]}
    )
    nothing = encode_variable_declarations({"$n": None, "$o": {"k": None}})
    checks: dict[str, Any] = {
        f"({nothing}$n = null)": True,
        f"({nothing}$o.k = null)": True,
        f"({bindings}$v)": 'quote " and backslash \\',
        f"({bindings}$m[MetricName = 'a'].Value)": 1,
        "$merge([{'a': 1}, {'b': 2}])": {"a": 1, "b": 2},
        "$hash('abc', 'SHA-256')": hashlib.sha256(b"abc").hexdigest(),
        "$length($uuid())": 36,
    }
    for expression, expected in checks.items():
        actual = evaluate(expression)
        if actual != expected:
            raise RuntimeError(f"JSONata evaluator: {expression!r} gave {actual!r}, expected {expected!r}")
