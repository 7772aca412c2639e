"""The device key kit's files: the same four files `keys/provision-device.sh` writes, key files
read safely (regular files only, size-capped), and the registration call to print.

Directories the kit creates are 0700 whatever the umask; the private key is 0600 from its
creation; every file is written beside its target and renamed over it.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from bridge import devicekeys, names
from bridge.errors import BridgeError, InputError, InvalidKeyError
from bridge.model import CredentialFormat

KEY_NAME = "mender-agent.pem"
PUBLIC_NAME = "device-public.pem"
CERT_NAME = "device-cert.pem"
ID_NAME = "device-id"
MAX_KEY_FILE = 64 * 1024
# ClearBlade IoT Core's regional device API (docs/cloud-iot.md): the system key names the
# registry, the ClearBlade-UserToken header carries the registry's token.
CLEARBLADE_DEVICES = "/api/v/4/webhook/execute/{}/cloudiot_devices"


class KeyExistsError(InvalidKeyError):
    """A key is already where the kit would write one; nothing was changed."""


@dataclass(frozen=True)
class Kit:
    """Where one generated kit was written, and what to register."""

    device_id: str
    key_path: Path
    public_path: Path
    cert_path: Path
    id_path: Path
    cert_format: CredentialFormat
    public_format: CredentialFormat


def validate_device_id(device_id: str) -> str:
    """A new device's id: Cloud IoT's id rule, the one `bridge.names` applies to registry ids
    (a numeric id is the registry's to assign, never a kit's)."""
    try:
        return names.registry_id(device_id, "device id")
    except InputError as exc:
        raise InvalidKeyError(str(exc)) from None


def read_key_file(path: str | Path, limit: int = MAX_KEY_FILE) -> bytes:
    """At most `limit` bytes of a regular file. A device (/dev/zero), a FIFO or a directory is
    refused before anything is read, and a FIFO is never waited on (O_NONBLOCK)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise InvalidKeyError(f"{path} is not a regular file")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise InvalidKeyError(f"cannot read {path}: {exc.strerror}") from None
    try:
        # Checked again on what was opened: the path may have been swapped since the stat.
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidKeyError(f"{path} is not a regular file")
        data = os.read(fd, limit + 1)
    except OSError as exc:
        raise InvalidKeyError(f"cannot read {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise InvalidKeyError(f"{path} is larger than the limit of {limit} bytes")
    return data


def load_private_key(path: str | Path) -> devicekeys.PrivateKey:
    """An unencrypted PEM private key (SEC1, PKCS#1 or PKCS#8) from a regular file."""
    return devicekeys.parse_private_key(read_key_file(path), str(path))


def default_device_id(machine_id_file: Path = Path("/etc/machine-id")) -> str:
    """`g-<machine-id>`, the meta-gcp-iot layer's convention."""
    try:
        machine_id = "".join(read_key_file(machine_id_file, 4096).decode("ascii").split())
    except (InvalidKeyError, UnicodeDecodeError):
        raise InvalidKeyError(
            f"cannot read {machine_id_file} to make the default device id; give --device-id"
        ) from None
    if not machine_id:
        raise InvalidKeyError(f"{machine_id_file} is empty; give --device-id")
    return validate_device_id(f"g-{machine_id}")


def make_private_dir(path: Path) -> None:
    """Create `path` and its missing parents with mode 0700, whatever the umask (mkdir's mode
    is masked by it, and Path.mkdir gives parents the default mode); existing ones are kept."""
    missing: list[Path] = []
    while not path.exists() and not path.is_symlink() and path != path.parent:
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            continue
        os.chmod(directory, 0o700)


def write_kit(out_dir: str | Path, *, kind: devicekeys.KeyKind = "ec", device_id: str,
              force: bool = False, key: devicekeys.PrivateKey | None = None) -> Kit:
    """Write the same four files as provision-device.sh; KeyExistsError if a key is there."""
    validate_device_id(device_id)
    out = Path(out_dir)
    key_path = out / KEY_NAME
    if (key_path.exists() or key_path.is_symlink()) and not force:
        raise KeyExistsError(f"a key already exists at {key_path}; nothing changed "
                             "(--force replaces it)")
    try:
        make_private_dir(out)
    except OSError as exc:
        raise BridgeError(f"cannot create {out}: {exc.strerror}") from None
    key = key or devicekeys.generate_key(kind)
    cert_format, public_format = devicekeys.formats(key)
    paths = Kit(device_id, key_path, out / PUBLIC_NAME, out / CERT_NAME, out / ID_NAME,
                cert_format, public_format)
    try:
        _write(paths.public_path, devicekeys.public_pem(key).encode("ascii"), 0o644)
        _write(paths.cert_path, devicekeys.certificate(key, device_id).encode("ascii"), 0o644)
        _write(paths.id_path, f"{device_id}\n".encode("ascii"), 0o644)
        _write(key_path, devicekeys.private_pem(key), 0o600)
    except OSError as exc:
        raise BridgeError(f"cannot write the key kit in {out}: {exc.strerror}") from None
    return paths


def _write(path: Path, data: bytes, mode: int) -> None:
    # Created with its final mode, then renamed over the target: never visible half-written
    # and never readable by others, even for a moment.
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def register_body(device_id: str, fmt: CredentialFormat, key_text: str) -> str:
    """The Device JSON that creates the device with this credential (compact, as the
    script prints it)."""
    body = {"id": device_id, "credentials": [{"publicKey": {"format": fmt.value,
                                                             "key": key_text}}]}
    return json.dumps(body, separators=(",", ":"))


def register_command(device_id: str, fmt: CredentialFormat, key_text: str, *,
                     url: str | None = None, system_key: str | None = None) -> str:
    """A `curl` line for POSIX sh that creates the device in a ClearBlade IoT Core registry.
    Every value is quoted; what is not given stays a variable the operator sets
    ($CLEARBLADE_URL, $CLEARBLADE_SYSTEM_KEY), and the token is always $CLEARBLADE_TOKEN,
    never printed."""
    base = sh_quote(url.removesuffix("/")) if url else '"$CLEARBLADE_URL"'
    system = sh_quote(system_key) if system_key else '"$CLEARBLADE_SYSTEM_KEY"'
    target = base + CLEARBLADE_DEVICES.format(system)
    return " ".join([
        "curl -fsS -X POST -H \"ClearBlade-UserToken: $CLEARBLADE_TOKEN\"",
        "-H 'Content-Type: application/json' --data-binary",
        sh_quote(register_body(device_id, fmt, key_text)), target])


def sh_quote(text: str) -> str:
    """`text` for POSIX sh: in single quotes, each ' written as '\\'' (always quoted, as
    provision-device.sh quotes, so the two print the same line)."""
    return "'" + text.replace("'", "'\\''") + "'"
