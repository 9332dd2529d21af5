r"""The attention-oracle protocol: what an oracle receives, what it returns, and what it certifies.

An *oracle* is any callable

    ``oracle(Q, K, V, *, scale=None, log_eps=None) -> OracleAnswer | LogArray | numpy.ndarray | torch.Tensor``

approximating ``T = D^{-1} exp(scale Q K^T) V`` (Definition 1.2 of Alman & Song). ``log_eps``, when the caller
gives it, is the natural log of the additive error per output entry that the caller needs; an oracle that can
meet a requested accuracy chooses its own parameters from it, and one that cannot raises
:class:`~instances.errors.UncertifiedError` at once instead of computing an answer too coarse to use. Oracles
that do not take ``log_eps`` are called without it.

An :class:`OracleAnswer` carries the output and a :class:`Certificate`: the error bound the oracle *proves* for
it. A bare LogArray or float array is wrapped as an answer with no certificate. Callers never trust an output
further than its certificate: :meth:`Certificate.apply` turns an output into certified entrywise bounds
(:class:`~instances.solutions.CertifiedOutput`), and the threshold test of Lemma 4.7 decides a row only when
both bounds lie on the same side of ``2 t~``.

Certificate kinds (every bound is stored as its natural log, so that bounds like ``e^{-2500}`` fit):

* ``"additive"``: ``|T~ - T| <= e^{log_bound}`` entrywise;
* ``"relative"``: ``|T~ - T| <= rho |T|`` with ``rho = e^{log_bound} < 1``;
* ``"log"``: ``|log|T~| - log|T|| <= delta`` with ``delta = e^{log_bound}``, and ``T~`` has the sign of ``T``;
* ``"none"``: nothing is certified.

``log_bound`` may be a scalar, one value per row or one per entry.
"""

from __future__ import annotations

import importlib
import inspect
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from instances.errors import FinegrainedError, NumericalError, ParameterError, UncertifiedError, short_repr
from instances.logspace import LOG_HUGE, LOG_TINY, LogArray, log_add
from instances.solutions import CertifiedOutput

KINDS = ("none", "additive", "relative", "log")
#: Entry-point group through which installed packages register oracles by name.
ENTRY_POINT_GROUP = "finegrained.oracles"


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _as_matrix(name: str, x) -> tuple[np.ndarray, float]:
    """The matrix as float64 and its largest absolute entry (one pass: NaN and inf propagate into the max)."""
    if isinstance(x, np.ndarray) and x.dtype.kind not in "biuf":
        raise ParameterError(f"{name} must be a real numeric matrix, got dtype {x.dtype}")
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: a Python int beyond float64
        raise ParameterError(f"{name} must be a real numeric matrix ({exc})") from None
    if arr.ndim != 2:
        raise ParameterError(f"{name} must be a 2-D matrix, got an array of shape {arr.shape}")
    top = float(np.abs(arr).max(initial=0.0))
    if not np.isfinite(top):
        raise NumericalError(f"{name} contains NaN or infinite entries")
    return arr, top


def check_attention_inputs(Q, K, V, scale: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Validate shapes and finiteness of an attention call and resolve the default ``scale = 1/d``.

    Returns float64 versions of Q, K, V and the scale. Raises :class:`~instances.errors.ParameterError` on
    inconsistent shapes or non-real input and :class:`~instances.errors.NumericalError` on NaN/inf entries or if
    a score could overflow float64.

    Examples
    --------
    >>> Q, K, V, s = check_attention_inputs([[1.0, 2.0]], [[0.0, 1.0]], [[3.0]], None)
    >>> Q.shape, K.shape, V.shape, s
    ((1, 2), (1, 2), (1, 1), 0.5)
    """
    (Q, qmax), (K, kmax), (V, _) = _as_matrix("Q", Q), _as_matrix("K", K), _as_matrix("V", V)
    if Q.shape[1] != K.shape[1]:
        raise ParameterError(f"Q has {Q.shape[1]} columns but K has {K.shape[1]}; they must share dimension d")
    if V.shape[0] != K.shape[0]:
        raise ParameterError(f"V has {V.shape[0]} rows but K has {K.shape[0]}; V needs one row per key")
    if K.shape[0] == 0:
        raise ParameterError("attention needs at least one key (K has 0 rows): the normaliser D would be 0")
    d = Q.shape[1]
    if scale is None:
        scale = 1.0 / d if d > 0 else 1.0
    try:
        scale = float(scale)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a Python int beyond float64
        raise ParameterError(f"scale must be a real number, got {short_repr(scale)}") from None
    if not np.isfinite(scale):
        raise ParameterError(f"scale must be finite, got {scale}")
    # A bound on every |score|: if its log is below LOG_HUGE the product cannot overflow.
    if qmax > 0 and scale != 0 and np.log(qmax) + np.log(abs(scale)) > LOG_HUGE - 1:
        raise NumericalError(f"scale * Q overflows float64 (|scale| = {abs(scale):.3g}, max|Q| = {qmax:.3g})")
    if qmax > 0 and kmax > 0 and scale != 0:
        log_bound = np.log(qmax) + np.log(kmax) + np.log(max(d, 1)) + np.log(abs(scale))
        if log_bound > LOG_HUGE - 1:
            raise NumericalError(
                f"scores s*<q,k> may reach exp({log_bound:.1f}) and overflow float64; rescale the inputs"
            )
    return Q, K, V, scale


def _fmt_log(x: float) -> str:
    """``e^{x}`` in words, with the plain number when it is representable."""
    if not math.isfinite(x):
        return "0" if x < 0 else "inf"
    if -700 < x < 700:
        return f"{math.exp(x):.3g} (e^{x:.4g})"
    return f"e^{x:.6g}"


@dataclass(frozen=True)
class Certificate:
    """What an oracle proves about the error of its output (module docstring).

    Attributes
    ----------
    kind : {"none", "additive", "relative", "log"}
    log_bound : float or numpy.ndarray
        Natural log of the bound, in the kind's unit; broadcastable to the output (scalar, per row ``(n, 1)``
        or per entry). ``-inf`` means exact.
    detail : str
        Where the bound comes from (the lemma or the error analysis), for reports.

    Examples
    --------
    >>> c = Certificate("additive", math.log(0.1))
    >>> lo, hi = c.apply(LogArray.from_float(np.array([[1.0], [0.05]]))).lower, None
    >>> np.round(lo.to_float().ravel(), 3).tolist()
    [0.9, -0.05]
    >>> Certificate("relative", math.log(0.5)).describe()
    'relative error <= 0.5 (e^-0.6931)'
    """

    kind: str
    log_bound: float | np.ndarray = -math.inf
    detail: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ParameterError(f"unknown certificate kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.kind == "none":
            object.__setattr__(self, "log_bound", math.inf)
            return
        what = f"{_article(self.kind)} {self.kind} certificate"
        try:
            b = np.asarray(self.log_bound, dtype=np.float64)
        except (TypeError, ValueError):
            raise NumericalError(f"{what} needs a real log-bound, got {short_repr(self.log_bound)}") from None
        except OverflowError:  # a Python int beyond float64: refused like any argument float64 cannot hold
            raise ParameterError(
                f"{what} needs a log-bound within float64 range, got {short_repr(self.log_bound)}") from None
        if np.isnan(b).any() or np.isposinf(b).any():
            raise NumericalError(f"{what} has a NaN or infinite bound: it certifies nothing")
        if self.kind == "relative" and (b >= 0).any():
            raise NumericalError("a relative error bound >= 1 does not fix the sign of the output: it certifies "
                                 "nothing")
        object.__setattr__(self, "log_bound", float(b) if b.ndim == 0 else b)

    @property
    def certified(self) -> bool:
        return self.kind != "none"

    @property
    def worst_log_bound(self) -> float:
        """The largest bound over all entries (``inf`` for no certificate, ``-inf`` for a bound on no entries)."""
        return float(np.max(self.log_bound, initial=-math.inf)) if self.certified else math.inf

    def describe(self) -> str:
        """One phrase, e.g. ``"additive error <= 1e-06 (e^-13.82)"``."""
        if not self.certified:
            return "no certified error bound"
        return f"{self.kind} error <= {_fmt_log(self.worst_log_bound)}"

    def to_dict(self) -> dict[str, Any]:
        b = self.worst_log_bound
        return {"kind": self.kind, "log_bound": b if math.isfinite(b) else None, "description": self.describe(),
                "detail": self.detail}

    def apply(self, value: LogArray) -> CertifiedOutput:
        """Certified entrywise bounds ``lower <= T <= upper`` on the exact output, given the oracle's ``value``."""
        if not self.certified:
            return CertifiedOutput(value)
        try:
            b = np.broadcast_to(np.asarray(self.log_bound, dtype=np.float64), value.shape)
        except ValueError:
            raise ParameterError(f"the certificate's bound has shape {np.shape(self.log_bound)}, which does not fit "
                                 f"an output of shape {value.shape}") from None
        if self.kind == "additive":
            # v +- e rounds with an absolute error of a few ulps of max(|v|, e) (the result of a cancellation,
            # and an answer computed as u -+ e, carry that error however small they are), so widen e by it.
            with np.errstate(invalid="ignore"):
                big = np.maximum(np.where(value.sign == 0, -np.inf, value.log_abs), b)
                # a stored log L is exact to x = |L| 2^-49 or so, i.e. e^L to a relative expm1(x): linear in x for
                # ordinary L, but beyond |L| ~ 1e16 the log's own spacing exceeds a nat, so use log(expm1(x)) itself
                x = _ULPS * 2.0 * (2.0 + np.abs(np.where(np.isfinite(big), big, 0.0)))
                slop = big + np.where(x > 30.0, x, np.log(np.expm1(np.minimum(x, 30.0))))
                b = np.where(np.isneginf(b), b, np.logaddexp(b, slop))
            if np.isposinf(b).any():
                raise NumericalError("a certified bound overflows the log range")
            err = LogArray(np.where(np.isneginf(b), 0, 1), b)
            neg = LogArray(-err.sign, b)
            return _outward(CertifiedOutput(value, log_add(value, neg), log_add(value, err)), exact=np.isneginf(b))
        # relative or log: the sign is certified and only the magnitude is uncertain.
        # an overflow here is reported as one NumericalError below, not as numpy warnings before it (e^b past
        # float64, log1p(-1) when rho rounds to 1, or -inf + inf on the zero entries that np.where then discards)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if self.kind == "relative":
                rho = np.exp(b)
                down, up = -np.log1p(rho), -np.log1p(-rho)  # T in [T~/(1+rho), T~/(1-rho)] for T~ > 0
            else:
                delta = np.exp(b)
                down, up = -delta, delta
            pos = value.sign > 0
            lo_log = np.where(value.sign == 0, -np.inf, value.log_abs + np.where(pos, down, up))
            hi_log = np.where(value.sign == 0, -np.inf, value.log_abs + np.where(pos, up, down))
        if np.isposinf(hi_log).any() or np.isposinf(lo_log).any():
            raise NumericalError("a certified bound overflows the log range")
        return _outward(CertifiedOutput(value, LogArray(value.sign, lo_log), LogArray(value.sign, hi_log)),
                        exact=np.isneginf(b))


#: Outward rounding of certified bounds: a stored log ``L`` is exact only to about ``|L| 2^-52``, and the bound
#: arithmetic above rounds to nearest, so every bound is widened by a few units in the last place of its log.
_ULPS = 8 * 2.0**-52


def _outward(b: CertifiedOutput, exact: np.ndarray) -> CertifiedOutput:
    """``b`` with ``lower`` moved down and ``upper`` moved up by :data:`_ULPS` relative to their logs (bounds
    of entries certified exact, and zeros, are left alone)."""
    def widen(x: LogArray, up: bool) -> LogArray:
        step = _ULPS * np.maximum(1.0, np.abs(np.where(np.isfinite(x.log_abs), x.log_abs, 0.0)))
        grow = (x.sign > 0) == up  # moving up grows a positive value and shrinks a negative one
        moved = np.where(grow, x.log_abs + step, x.log_abs - step)
        return LogArray(x.sign, np.where((x.sign == 0) | exact, x.log_abs, moved))

    return CertifiedOutput(b.value, widen(b.lower, up=False), widen(b.upper, up=True))


#: The certificate of an oracle that proves nothing.
UNCERTIFIED = Certificate("none")


@dataclass(frozen=True)
class OracleAnswer:
    """An oracle's output and its certificate.

    Attributes
    ----------
    output : LogArray, shape (n_q, d_v)
    certificate : Certificate
    from_float : bool
        The oracle returned plain floats (converted here), so entries below the float range read as 0.
    float_log_tiny : float
        With ``from_float``: log of the smallest positive normal number of the oracle's own float type (float64's
        by default); thresholds below it cannot be read off its outputs.
    info : dict
        Anything else the oracle reports (parameters it chose, timings); JSON-serialisable.
    """

    output: LogArray
    certificate: Certificate = UNCERTIFIED
    from_float: bool = False
    info: dict = field(default_factory=dict)
    float_log_tiny: float = LOG_TINY

    def bounds(self) -> CertifiedOutput:
        return self.certificate.apply(self.output)


@runtime_checkable
class Oracle(Protocol):
    """The calling convention of every attention oracle (module docstring)."""

    def __call__(self, Q: np.ndarray, K: np.ndarray, V: np.ndarray, *, scale: float | None = None,
                 log_eps: float | None = None) -> OracleAnswer | LogArray | np.ndarray: ...


def _load_plugin(spec: str) -> Callable[..., Any]:
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ParameterError(f"a plug-in oracle is given as package.module:function, got {spec!r}")
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # an arbitrary user module: any import failure is one line
        raise ParameterError(f"cannot import plug-in oracle module {module!r}: {type(exc).__name__}: {exc}") from None
    obj = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ParameterError(f"plug-in module {module!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ParameterError(f"plug-in oracle {spec!r} is not callable")
    return obj


def _entry_point_oracles() -> dict[str, Any]:
    from importlib.metadata import entry_points

    try:
        return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    except Exception:  # broken metadata of some unrelated package must not break name resolution
        return {}


def oracle_names(builtin: dict[str, Callable[..., Any]]) -> list[str]:
    """Built-in names plus those registered through the ``finegrained.oracles`` entry-point group."""
    return sorted(set(builtin) | set(_entry_point_oracles()))


def resolve_oracle(oracle: str | Callable[..., Any], builtin: dict[str, Callable[..., Any]],
                   unavailable: dict[str, str] | None = None) -> tuple[str, Callable[..., Any]]:
    """The name and callable of an oracle given by name, ``package.module:function``, entry point or callable.

    ``builtin`` is the registry of names (:data:`finegrained.attention.ORACLES`, which
    :func:`finegrained.attention.resolve_oracle` passes); ``unavailable`` maps names of oracles whose optional
    extra is missing to that extra.
    """
    if callable(oracle):
        return getattr(oracle, "__name__", "custom"), oracle
    if not isinstance(oracle, str):
        raise ParameterError(f"an oracle is a name or a callable, got {type(oracle).__name__}")
    if oracle in builtin:
        return oracle, builtin[oracle]
    if ":" in oracle:
        return oracle, _load_plugin(oracle)
    eps = _entry_point_oracles()
    if oracle in eps:
        try:
            fn = eps[oracle].load()
        except Exception as exc:
            raise ParameterError(f"cannot load oracle {oracle!r} from its entry point: {exc}") from None
        if not callable(fn):
            raise ParameterError(f"entry point {oracle!r} does not name a callable")
        return oracle, fn
    missing = unavailable or {}  # oracles of extras that are not installed: say which extra
    if oracle in missing:
        raise ParameterError(f"oracle {oracle!r} needs the optional extra {missing[oracle]!r}: "
                             f"pip install 'finegrained[{missing[oracle]}]'")
    raise ParameterError(f"unknown oracle {oracle!r}; available: {', '.join(oracle_names(builtin))}, "
                         "or package.module:function")


def _accepts_log_eps(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "log_eps" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _to_numpy(out: Any) -> tuple[np.ndarray, float] | None:
    """A float64 ndarray from a numpy array or a torch tensor (on any device), with the log of the smallest
    positive normal number of its own dtype; None if ``out`` is neither."""
    log_tiny = LOG_TINY
    if hasattr(out, "detach") and hasattr(out, "cpu"):  # a torch tensor, without importing torch
        out = out.detach().cpu()
        if getattr(out, "is_complex", lambda: False)():
            raise ParameterError("the oracle returned a complex tensor; attention outputs are real")
        if getattr(out, "is_floating_point", lambda: False)():
            import torch

            log_tiny = math.log(torch.finfo(out.dtype).tiny)
        out = out.double().numpy()
    if isinstance(out, np.ndarray) or isinstance(out, (list, tuple)):
        arr = np.asarray(out)
        if arr.dtype.kind == "c":
            raise ParameterError("the oracle returned complex values; attention outputs are real")
        if arr.dtype.kind not in "biuf":
            raise ParameterError(f"the oracle returned an array of dtype {arr.dtype}; expected real floats")
        if arr.dtype.kind == "f":
            log_tiny = max(log_tiny, math.log(float(np.finfo(arr.dtype).tiny)))
        return arr.astype(np.float64), log_tiny
    return None


def as_answer(out: Any, name: str = "oracle") -> OracleAnswer:
    """Wrap whatever an oracle returned as an :class:`OracleAnswer` (floats and LogArrays are uncertified)."""
    if isinstance(out, OracleAnswer):
        return out
    if isinstance(out, LogArray):
        return OracleAnswer(out)
    converted = _to_numpy(out)
    if converted is None:
        raise ParameterError(f"oracle {name!r} returned {type(out).__name__}; expected an OracleAnswer, a "
                             "LogArray, a numpy array or a torch tensor")
    arr, log_tiny = converted
    if arr.ndim == 1:
        arr = arr[:, None]
    if not np.isfinite(arr).all():
        raise NumericalError(f"oracle {name!r} returned NaN or infinite values")
    return OracleAnswer(LogArray.from_float(arr), from_float=True, float_log_tiny=log_tiny)


def call_oracle(name: str, oracle: Callable[..., Any], Q: np.ndarray, K: np.ndarray, V: np.ndarray, *,
                scale: float, log_eps: float | None = None) -> tuple[OracleAnswer, float]:
    """Call an oracle once and check its answer; returns the answer and the seconds the call took.

    ``log_eps`` is passed to oracles that accept it. The answer must have one row per query and one column per
    column of ``V``; anything else is refused with a :class:`ParameterError` naming the oracle.
    """
    kwargs: dict[str, Any] = {"scale": scale}
    if log_eps is not None and _accepts_log_eps(oracle):
        kwargs["log_eps"] = log_eps
    t0 = time.perf_counter()
    try:
        raw = oracle(Q, K, V, **kwargs)
    except (FinegrainedError, MemoryError, KeyboardInterrupt):
        raise
    except (Exception, SystemExit) as exc:  # an outside kernel's own failure is one line, not a traceback
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise ParameterError(f"oracle {name!r} failed: {type(exc).__name__}" + (f": {detail}" if detail else "")) \
            from None
    seconds = time.perf_counter() - t0
    answer = as_answer(raw, name)
    expected = (Q.shape[0], V.shape[1])
    if answer.output.shape != expected:
        raise ParameterError(f"oracle {name!r} returned an output of shape {answer.output.shape}; expected "
                             f"{expected} (one row per query, one column per column of V)")
    return answer, seconds


__all__ = ["ENTRY_POINT_GROUP", "KINDS", "UNCERTIFIED", "Certificate", "Oracle", "OracleAnswer", "UncertifiedError",
           "as_answer", "call_oracle", "check_attention_inputs", "oracle_names", "resolve_oracle"]
