"""The global maximum of the profiled ML or REML likelihood in tau^2, proven from a few passes.

The score is S(t) = (f(t) - g(t)) / 2 with f = y'P^2 y and g = tr P (REML) or sum w (ML).
Since dP/dt = -P^2 and P is positive semi-definite, f and g are decreasing and convex:
f' = -2 y'P^3 y <= 0, f'' = 6 y'P^4 y >= 0; (tr P)' = -tr P^2, (tr P)'' = 2 tr P^3 >= 0;
(sum w)' = -sum w^2, (sum w)'' = 2 sum w^3 >= 0.  One pass at t gives f, g, f', g'.  On an
interval [a, b] this bounds S everywhere, with no assumption on its shape:

* f >= max of its tangents at a and b, f <= its chord (convexity), the same for g, so
  S > 0 on [a, b] if the tangents of f minus the chord of g stay above 0, S < 0 if the
  chord of f minus the tangents of g stay below 0 (piecewise linear: checked at a, b and
  the tangents' crossing);
* f' and g' increase (convexity), so S' <= (f'(b) - g'(a)) / 2 on [a, b]: if that is < 0, S
  is strictly decreasing there and crosses 0 at most once (a maximum); S' >= (f'(a) - g'(b))/2
  > 0 proves it increasing (at most a minimum).
* Beyond T, S < 0: y'P^2 y <= lambda_max(P) y'Py <= RSS_ols / (v_min + t)^2 (P <= W, and y'Py
  is the least weighted residual sum of squares, at most the OLS residuals' weighted), and
  tr P = tr((I - H_W) W) >= (k - p) / (v_max + t) (sum w >= k / (v_max + t) for ML); T is
  where the first bound falls below the second for good (a quadratic in t).

Intervals that no test settles are halved; every one settled, the maxima are 0 (if S(0) <= 0)
and the one root in each decreasing interval where S changes sign: the global maximum is the
highest of them, proven.  Pieces are cheap (a few per fit on real data); after LIMIT of them
the caller falls back to scanning a grid.
"""

from __future__ import annotations

import numpy as np

LIMIT = 48  # passes the proof may take before the caller scans instead
MARGIN = 1e-9  # relative margin on every bound: rounding in the sums cannot prove a wrong sign


def tail_bound(powers, reml: bool) -> float:
    """A T with S(t) < 0 for every t >= T (0 when S < 0 everywhere)."""
    G, p = powers.plain, powers.p
    beta = np.linalg.solve(G[:p, :p], G[:p, p])
    u = np.append(-beta, 1.0)
    rss = max(0.0, float(u @ G @ u)) * (1 + MARGIN) + np.finfo(float).tiny
    c = len(powers.v) - (p if reml else 0)
    lo, hi = powers.v_range
    # c (lo + t)^2 - rss (hi + t) > 0 for t beyond the larger root of the quadratic
    b, c0 = 2 * c * lo - rss, c * lo * lo - rss * hi
    disc = b * b - 4 * c * c0
    if disc < 0:
        return 0.0
    return max(0.0, (-b + np.sqrt(disc)) / (2 * c)) * (1 + 1e-6)


def _point(likelihood, t):
    s = likelihood.powers.at(t, 3)
    if likelihood.reml:
        return t, s.ypp, s.trP, -2 * s.ypppy(), -s.trPP
    return t, s.ypp, s.sumw, -2 * s.ypppy(), -s.sumw2


def _judge(a, b):
    """'+', '-' (the sign of S on the whole interval), 'down', 'up' (S monotone) or None."""
    ta, fa, ga, dfa, dga = a
    tb, fb, gb, dfb, dgb = b
    scale = MARGIN * (abs(fa) + abs(ga) + abs(fb) + abs(gb))
    dscale = MARGIN * (abs(dfa) + abs(dga) + abs(dfb) + abs(dgb))
    if dfb - dga < -dscale:
        return "down"
    if dfa - dgb > dscale:
        return "up"
    width = tb - ta

    def kink(dh_a, dh_b, ha, hb):  # where the tangents at a and b cross, if inside (a, b)
        if dh_b <= dh_a:
            return []
        t = (hb - ha + dh_a * ta - dh_b * tb) / (dh_a - dh_b)
        return [t] if ta < t < tb else []

    def tangents(t, h_a, dh_a, h_b, dh_b):
        return max(h_a + dh_a * (t - ta), h_b + dh_b * (t - tb))

    def chord(t, h_a, h_b):
        return h_a + (h_b - h_a) * (t - ta) / width

    at_f = [ta, tb] + kink(dfa, dfb, fa, fb)
    if min(tangents(t, fa, dfa, fb, dfb) - chord(t, ga, gb) for t in at_f) > scale:
        return "+"
    at_g = [ta, tb] + kink(dga, dgb, ga, gb)
    if max(chord(t, fa, fb) - tangents(t, ga, dga, gb, dgb) for t in at_g) < -scale:
        return "-"
    return None


def maximise(likelihood, start: float, root):
    """The global maximiser over tau^2 >= 0, proven (module docstring), or None after LIMIT passes."""
    T = tail_bound(likelihood.powers, likelihood.reml)
    p0 = _point(likelihood, 0.0)
    s0 = p0[1] - p0[2]
    if T <= 0:
        return 0.0
    known = {}
    if s0 > 0:
        known = {root(likelihood.score_and_slope, 0.0, np.inf, start): None}
    ends = sorted({0.0, T, *[t for t in known if 0 < t < T]})
    points = {t: p0 if t == 0 else _point(likelihood, t) for t in ends}
    todo = list(zip(ends[:-1], ends[1:]))
    candidates = [0.0] if s0 <= 0 else []
    while todo:
        a, b = todo.pop()
        verdict = _judge(points[a], points[b])
        if verdict is None:
            if len(points) >= LIMIT:
                return None
            m = np.sqrt(a * b) if a > 0 and b > 4 * a else 0.5 * (a + b)
            points[m] = _point(likelihood, m)
            todo += [(a, m), (m, b)]
        elif verdict == "down" and points[a][1] - points[a][2] > 0 >= points[b][1] - points[b][2]:
            hit = [t for t in (a, b) if t in known]
            candidates.append(hit[0] if hit else root(likelihood.score_and_slope, a, b, a if a > 0 else b))
    candidates = sorted(set(candidates))
    if len(candidates) == 1:
        return candidates[0]
    values = [likelihood.value(t) for t in candidates]
    return candidates[int(np.argmax(values))]
