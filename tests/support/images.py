"""A base image without Docker Hub: Debian's static busybox imported as local/busybox:1."""

from __future__ import annotations

import io
import shutil
import tarfile

BUSYBOX = "/bin/busybox"
APPLETS = ("sh", "echo", "cat", "sleep", "wget", "httpd", "true", "false", "nc", "ls", "mkdir", "test", "env")


def busybox_tar() -> bytes:
    if not shutil.which("busybox") and not shutil.os.path.exists(BUSYBOX):
        raise RuntimeError("busybox is not installed: run 'make setup' (Debian busybox-static).")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for folder in ("bin", "tmp", "etc"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
            tar.addfile(info)
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
    return buf.getvalue()


def ensure_busybox_image(client, name: str = "local/busybox:1") -> str:
    import docker.errors

    try:
        client.images.get(name)
        return name
    except docker.errors.ImageNotFound:
        pass
    repo, tag = name.rsplit(":", 1)
    client.api.import_image_from_data(busybox_tar(), repository=repo, tag=tag)
    client.images.get(name)
    return name


def remove_images(client, prefix: str) -> None:
    """Remove every tag and digest reference under prefix (host/namespace/); an image left
    without references goes, with the intermediate layers only it uses. Removal is by reference,
    never by id: an image that another image (anyone's, from the shared layer cache) builds on
    stays as an unnamed layer of that image, and nothing of anyone else's is touched."""
    import docker.errors

    def ours(summary: dict) -> list[str]:  # the list call's summaries: no inspect, which races other removals
        return [ref for ref in (summary.get("RepoTags") or []) + (summary.get("RepoDigests") or []) if ref.startswith(prefix)]

    for summary in client.api.images():
        for ref in ours(summary):
            try:
                client.images.remove(ref)
            except docker.errors.ImageNotFound:
                pass
    left = [ref for summary in client.api.images(all=True) for ref in ours(summary)]
    if left:
        raise RuntimeError(f"images still in the engine after removal: {', '.join(left)}")
