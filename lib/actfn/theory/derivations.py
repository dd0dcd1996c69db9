"""Symbolic derivations of the theory chapter (sympy).

Each function returns sympy expressions that the chapter renders as LaTeX and the tests compare
with the numeric code in :mod:`actfn.theory.gaussian` and :mod:`actfn.theory.correlation`.
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

x, mu, a, b = sp.symbols("x mu a b", real=True)
sigma = sp.symbols("sigma", positive=True)
alpha, beta = sp.symbols("alpha beta", real=True)


def normal_pdf(var=x):
    return sp.exp(-(var - mu) ** 2 / (2 * sigma ** 2)) / (sp.sqrt(2 * sp.pi) * sigma)


def std_pdf(z):
    return sp.exp(-z ** 2 / 2) / sp.sqrt(2 * sp.pi)


def std_cdf(z):
    return (1 + sp.erf(z / sp.sqrt(2))) / 2


z, za_, zb_ = sp.symbols("z z_a z_b", real=True)


@lru_cache(maxsize=None)
def truncated_moment(n: int, lower=a, upper=b):
    """E[x^n 1{lower < x < upper}] for x ~ N(mu, sigma^2), integrated by sympy.

    Substituting x = mu + sigma z turns it into sum_j C(n,j) mu^(n-j) sigma^j int z^j phi(z) dz,
    integrals sympy does in closed form (it cannot do the x-form with a symbolic mu).
    """
    integrand = sp.expand((mu + sigma * z) ** n) * std_pdf(z)
    # infinite ends stay as limits of integration (substituting -oo afterwards gives -oo * 0)
    lo = lower if lower in (sp.oo, -sp.oo) else za_
    hi = upper if upper in (sp.oo, -sp.oo) else zb_
    result = sp.integrate(integrand, (z, lo, hi))
    return sp.simplify(result.subs({za_: (lower - mu) / sigma, zb_: (upper - mu) / sigma}))


def truncated_moment_closed_form(n: int, lower=a, upper=b):
    """The phi/Phi form that :func:`actfn.theory.gaussian.gaussian_segment_moments` implements.

    At an infinite end phi(z) and z phi(z) are 0 and Phi(z) is 0 or 1 (their limits).
    """
    def ends(edge):
        if edge is sp.S.NegativeInfinity:
            return sp.S.Zero, sp.S.Zero, sp.S.Zero
        if edge is sp.S.Infinity:
            return sp.S.One, sp.S.Zero, sp.S.Zero
        ze = (edge - mu) / sigma
        return std_cdf(ze), std_pdf(ze), ze * std_pdf(ze)

    (cdf_a, pdf_a, zpdf_a), (cdf_b, pdf_b, zpdf_b) = ends(lower), ends(upper)
    m0 = cdf_b - cdf_a
    dphi = pdf_a - pdf_b
    if n == 0:
        return m0
    if n == 1:
        return mu * m0 + sigma * dphi
    if n == 2:
        return (mu ** 2 + sigma ** 2) * m0 + 2 * mu * sigma * dphi + sigma ** 2 * (zpdf_a - zpdf_b)
    raise ValueError("only n = 0, 1, 2 are needed")


def closed_form_matches_integral(n: int, lower=a, upper=b) -> bool:
    """True if sympy simplifies integral - closed form to zero."""
    diff = truncated_moment(n, lower, upper) - truncated_moment_closed_form(n, lower, upper)
    return sp.simplify(sp.expand(diff.rewrite(sp.erf))) == 0


def segment_expectations():
    """E[f 1_seg] and E[f^2 1_seg] for f = alpha + beta x on one segment, in terms of M_n = E[x^n 1_seg].

    Expectation is linear, so expanding the polynomial in x and replacing x^n by M_n is exact.
    """
    M = sp.symbols("M_0 M_1 M_2")

    def by_moments(poly):
        p = sp.Poly(sp.expand(poly), x)
        return sp.expand(sum(coef * M[deg[0]] for deg, coef in zip(p.monoms(), p.coeffs())))

    return by_moments(alpha + beta * x), by_moments((alpha + beta * x) ** 2)


def closed_form_derivative_check(n: int):
    """d/db of the closed form minus b^n pdf(b), and the closed form at b = a (both simplify to 0)."""
    cf = truncated_moment_closed_form(n)
    return sp.simplify(sp.diff(cf, b) - b ** n * normal_pdf(b)), sp.simplify(cf.subs(b, a))


def classwise_correlation_symbols(K: int, equal_priors: bool = False):
    """rho_k in terms of class means m_k, priors p_k and the total sd s of f.

    rho_k = Cov(f, 1_k) / (sd f * sd 1_k) with Cov(f, 1_k) = p_k (m_k - m), m = sum p_k m_k.
    """
    m = sp.symbols(f"m_1:{K + 1}", real=True)
    if equal_priors:
        p = [sp.Rational(1, K)] * K
    else:
        p = list(sp.symbols(f"p_1:{K}", positive=True))
        p.append(1 - sum(p))
    s = sp.symbols("s", positive=True)
    mbar = sum(pk * mk for pk, mk in zip(p, m))
    rho = [pk * (mk - mbar) / (s * sp.sqrt(pk * (1 - pk))) for pk, mk in zip(p, m)]
    return rho, p, m, s, mbar


def zero_sum_identity(K: int, equal_priors: bool):
    """The weighted sum sum_k sqrt(p_k (1-p_k)) rho_k (0 for any priors) and plain sum_k rho_k."""
    rho, p, *_ = classwise_correlation_symbols(K, equal_priors)
    weighted = sp.simplify(sum(sp.sqrt(pk * (1 - pk)) * r for pk, r in zip(p, rho)))
    plain = sp.simplify(sum(rho))
    return weighted, plain


def budget_identity(K: int):
    """sum_k (1 - p_k) rho_k^2 minus the between-class variance over Var f (simplifies to 0)."""
    rho, p, m, s, mbar = classwise_correlation_symbols(K, equal_priors=False)
    between = sum(pk * (mk - mbar) ** 2 for pk, mk in zip(p, m)) / s ** 2
    return sp.simplify(sum((1 - pk) * r ** 2 for pk, r in zip(p, rho)) - between)


def two_class_objective():
    """The signed objective for K = 2, equal priors: rho_1 = -rho_2, so L = rho_1|rho_1| + rho_2|rho_2| = 0."""
    rho, *_ = classwise_correlation_symbols(2, equal_priors=True)
    return sp.simplify(rho[0] + rho[1]), sp.simplify(-(rho[0] * sp.Abs(rho[0]) + rho[1] * sp.Abs(rho[1])))


def posterior_log_odds(k_low: int = 1):
    """log P(k+1|x)/P(k|x) for neighbouring classes at spacing delta: linear in x with slope delta/sigma^2."""
    d, m1 = sp.symbols("Delta mu_k", real=True)
    xv = sp.symbols("x", real=True)
    lp = lambda m: -(xv - m) ** 2 / (2 * sigma ** 2)
    expr = sp.expand(lp(m1 + d) - lp(m1))
    return expr, sp.diff(expr, xv)
