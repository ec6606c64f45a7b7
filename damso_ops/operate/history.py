"""damso releases: the release history, newest first, with what changed from one to the next."""

from __future__ import annotations

from damso_ops.deploy.store import ReleaseStore


def history(store: ReleaseStore, limit: int = 20) -> list[dict]:
    """The newest `limit` releases, newest first, each with what changed from the one before."""
    pointer = store.current() or {}
    manifests = []  # newest first, one more than shown, to compare the oldest shown with
    for release_id in reversed(store.release_ids()):
        m = store.manifest(release_id)
        if m is not None:  # a half-uploaded release has no manifest yet
            manifests.append((release_id, m))
        if limit and len(manifests) > limit:
            break
    manifests.reverse()
    entries = []
    for n, (release_id, m) in enumerate(manifests):
        prev = manifests[n - 1][1] if n else None
        entries.append({
            "release": release_id,
            "created": m.get("created"),
            "by": m.get("by"),
            "build": m.get("build"),
            "current": release_id == pointer.get("release"),
            "previous": prev.get("release") if prev else None,
            "images": {s: {k: info.get(k) for k in ("image", "commit", "ref", "repository")}
                       for s, info in sorted(m.get("images", {}).items())},
            "changes": _changes(prev, m) if prev else None,
            "rollout": _outcome(store.outcome(release_id)),
        })
    if limit and len(entries) > limit:
        entries = entries[-limit:]
    return list(reversed(entries))


def _outcome(state: dict | None) -> dict | None:
    """How the release's rollout ended: done, halted at a wave, rolled back (None: before rollouts were recorded)."""
    if not state:
        return None
    failed = state.get("failed") or {}
    return {"state": state.get("state"), "finished": state.get("finished"), "failed_wave": failed.get("wave"),
            "failed_roles": failed.get("roles"), "error": failed.get("error"), "rolled_back": state.get("rolled_back")}  # fmt: skip


def _changes(old: dict, new: dict) -> dict:
    images = []
    old_images, new_images = old.get("images", {}), new.get("images", {})
    for service in sorted(set(old_images) | set(new_images)):
        a, b = old_images.get(service, {}), new_images.get(service, {})
        if a.get("image") != b.get("image") or a.get("commit") != b.get("commit"):
            images.append({"service": service, "from_commit": a.get("commit"), "to_commit": b.get("commit"),
                           "from_image": a.get("image"), "to_image": b.get("image")})  # fmt: skip
    files = {"added": [], "removed": [], "changed": []}
    old_roles, new_roles = old.get("roles", {}), new.get("roles", {})
    for role in sorted(set(old_roles) | set(new_roles)):
        a, b = old_roles.get(role, {}), new_roles.get(role, {})
        for name in sorted(set(a) | set(b)):
            kind = "added" if name not in a else "removed" if name not in b else "changed" if a[name] != b[name] else None
            if kind:
                files[kind].append(f"{role}/{name}")
    settings = sorted(r for r in set(old.get("settings", {})) | set(new.get("settings", {}))
                      if old.get("settings", {}).get(r) != new.get("settings", {}).get(r))  # fmt: skip
    return {"images": images, "files": files, "settings": settings}


