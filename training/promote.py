"""Inspect and change which version serves.

``python -m training.promote --list`` shows every version and the promotion history,
``--rollback`` returns to the previously promoted version, ``VERSION`` promotes a version
(it must pass the gate against the current one on the stored hold-out numbers, within the
configured tolerances and only when both share a hold-out, unless ``--force``; the decision is
recorded either way).
"""

from __future__ import annotations

import argparse
import os
import sys

from reggaeton.registry import ModelLoadError, PromotionError, Registry, home_from_env
from training.gate import decide, holdout_mismatch


def format_listing(registry: Registry) -> str:
    """Versions (oldest first, ``*`` marks the serving one) and the decision history."""
    current = registry.promotions.current()
    lines = [f"{'':2}{'tag':36} {'created_at':26} {'f1':>7} {'pr_auc':>7} {'threshold':>9}"]
    for v in registry.list():
        m = v.metadata.get("metrics", {})
        lines.append(
            f"{'*' if v.tag == current else ' ':2}{v.tag:36} "
            f"{v.metadata.get('created_at', ''):26} {_num(m.get('f1')):>7} "
            f"{_num(m.get('pr_auc')):>7} {_num(v.threshold):>9}"
        )
    lines.append("")
    lines.append(f"serving: {current or '(none)'}")
    lines.append("history:")
    for e in registry.promotions.history():
        forced = " (forced)" if e.get("forced") else ""
        lines.append(f"  {e['at']} {e['action']:8} {e['tag']}{forced}: {e['reason']}")
    return "\n".join(lines)


def promote_version(registry: Registry, tag: str, force: bool = False) -> dict:
    """Promote a stored version by hand, through the same gate as a training run.

    Without ``force`` the version's stored hold-out F1 and PR-AUC must be at least those
    stored for the current version, within the candidate's configured ``gate.*_tolerance``.
    Stored numbers are comparable only when both versions were evaluated on the same hold-out
    (same seed, ``split.test_size`` and data files); otherwise the promotion is refused as
    "not comparable" unless forced.

    Raises:
        ModelLoadError: unknown or unusable version.
        PromotionError: the gate refuses and ``force`` is False (rejection recorded).
    """
    version = registry.get(tag)
    registry.load_servable(version)  # refuse a version that cannot be served
    current_tag = registry.promotions.current()
    if current_tag == version.tag:
        raise PromotionError(f"{version.tag} is already the serving version")
    if current_tag and not force:
        current = registry.get(current_tag)
        new = version.metadata.get("metrics", {})
        gate_cfg = (version.metadata.get("config") or {}).get("gate") or {}
        tolerances = {
            "f1": float(gate_cfg.get("f1_tolerance", 0.0)),
            "pr_auc": float(gate_cfg.get("pr_auc_tolerance", 0.0)),
        }
        decision = decide(
            new,
            current.metadata.get("metrics", {}),
            tolerances,
            current_tag=current_tag,
            mismatch=holdout_mismatch(version.metadata, current.metadata),
        )
        if not decision.promote:
            reason = f"manual promotion refused: {decision.reason}"
            registry.promotions.reject(version.tag, reason, details=decision.details)
            raise PromotionError(reason + " (use --force)")
    reason = "manual promotion" + (" (forced)" if force else "")
    return registry.promotions.promote(version.tag, reason, forced=force)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code."""
    p = argparse.ArgumentParser(
        prog="python -m training.promote", description=__doc__.split("\n")[0]
    )
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--list", action="store_true", help="versions and promotion history")
    group.add_argument("--rollback", action="store_true", help="serve the previous version")
    group.add_argument("version", nargs="?", help="tag or version to promote")
    p.add_argument("--force", action="store_true", help="promote even if worse (recorded)")
    p.add_argument("--reason", default="manual rollback", help="reason recorded for --rollback")
    args = p.parse_args(argv)
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    registry = Registry(home_from_env())
    try:
        if args.list:
            print(format_listing(registry))
        elif args.rollback:
            entry = registry.promotions.rollback(args.reason)
            print(f"rolled back: {entry['previous']} -> {entry['tag']}")
        else:
            entry = promote_version(registry, args.version, args.force)
            print(f"promoted: {entry['tag']} (previous: {entry['previous'] or 'none'})")
    except (ModelLoadError, PromotionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _num(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


if __name__ == "__main__":
    sys.exit(main())
