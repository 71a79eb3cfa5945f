"""OpenSSH key revocation lists (KRL, as ``ssh-keygen -k`` writes them), read strictly.

The format is OpenSSH's PROTOCOL.krl; asyncssh has no reader, so this is our own. A KRL
revokes plain keys (the key itself, or its SHA-1 or SHA-256 hash) and certificates (by
serial number — lists, ranges and bitmaps — or by key ID, for one CA or for any CA).
As in OpenSSH's krl.c, anything this reader does not understand (a section type it does
not know, a critical extension, trailing data, a signature section, which OpenSSH 9.4
and later refuse too) is an error: the caller then revokes every key, since a revocation
list that is only partly read would let revoked keys in.

Pure Python on bytes: no asyncssh here, so it is cheap to import and to test.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

from ..errors import KrlError

__all__ = ["KRL_MAGIC", "KeyRevocationList", "KrlError", "parse_krl"]

KRL_MAGIC = b"SSHKRL\n\0"
_FORMAT_VERSION = 1

_SECTION_CERTIFICATES = 1
_SECTION_EXPLICIT_KEY = 2
_SECTION_FINGERPRINT_SHA1 = 3
_SECTION_SIGNATURE = 4
_SECTION_FINGERPRINT_SHA256 = 5
_SECTION_EXTENSION = 255

_CERT_SERIAL_LIST = 0x20
_CERT_SERIAL_RANGE = 0x21
_CERT_SERIAL_BITMAP = 0x22
_CERT_KEY_ID = 0x23
_CERT_EXTENSION = 0x39

_U64_MAX = 2**64 - 1


class _Reader:
    """SSH wire types (RFC 4251) read off a byte string, each read checked."""

    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._offset = 0
        self._what = what

    def remaining(self) -> int:
        return len(self._data) - self._offset

    def _take(self, size: int) -> bytes:
        if size > self.remaining():
            raise KrlError(f"{self._what} is cut short")
        chunk = self._data[self._offset : self._offset + size]
        self._offset += size
        return chunk

    def byte(self) -> int:
        return self._take(1)[0]

    def uint32(self) -> int:
        return int(struct.unpack(">I", self._take(4))[0])

    def uint64(self) -> int:
        return int(struct.unpack(">Q", self._take(8))[0])

    def string(self) -> bytes:
        return self._take(self.uint32())

    def boolean(self) -> bool:
        return self.byte() != 0

    def text(self) -> str:
        value = self.string()
        if b"\0" in value:
            raise KrlError(f"{self._what}: a string holds a NUL byte")
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise KrlError(f"{self._what}: a string is not UTF-8") from None

    def mpint(self) -> int:
        value = self.string()
        if value and value[0] & 0x80:
            raise KrlError(f"{self._what}: negative bitmap")
        return int.from_bytes(value, "big")

    def done(self) -> None:
        if self.remaining():
            raise KrlError(f"{self._what} holds {self.remaining()} byte(s) of unparsed data")


@dataclass
class _CertificateRevocations:
    """What one section revokes among the certificates of one CA (or of any CA)."""

    serial_ranges: list[tuple[int, int]] = field(default_factory=list)
    serial_bitmaps: list[tuple[int, int]] = field(default_factory=list)  # (offset, bits)
    key_ids: set[str] = field(default_factory=set)

    def revokes(self, serial: int, key_id: str) -> str | None:
        if key_id in self.key_ids:
            return f"key ID {key_id!r}"
        if serial == 0:  # no serial: OpenSSH ignores it too
            return None
        for low, high in self.serial_ranges:
            if low <= serial <= high:
                return f"serial {serial}" + ("" if low == high else f" (in {low}-{high})")
        for offset, bits in self.serial_bitmaps:
            if serial >= offset and (bits >> (serial - offset)) & 1:
                return f"serial {serial}"
        return None


@dataclass
class KeyRevocationList:
    """A parsed KRL. Key blobs are the SSH wire encoding of the plain public key."""

    version: int = 0
    generated: int = 0
    comment: str = ""
    keys: set[bytes] = field(default_factory=set)
    sha1: set[bytes] = field(default_factory=set)
    sha256: set[bytes] = field(default_factory=set)
    certificates: dict[bytes, list[_CertificateRevocations]] = field(default_factory=dict)

    def key_revoked(self, key_blob: bytes) -> str | None:
        """Why the plain key ``key_blob`` is revoked, or ``None``."""
        if hashlib.sha1(key_blob).digest() in self.sha1:
            return "its SHA-1 hash is revoked"
        if hashlib.sha256(key_blob).digest() in self.sha256:
            return "its SHA-256 hash is revoked"
        if key_blob in self.keys:
            return "the key is revoked"
        return None

    def certificate_revoked(
        self, key_blob: bytes, ca_blob: bytes, serial: int, key_id: str
    ) -> str | None:
        """Why a certificate (of key ``key_blob``, signed by ``ca_blob``) is revoked, or
        ``None``: its key, its serial or key ID for its CA or for any CA, or its CA's key."""
        reason = self.key_revoked(key_blob)
        if reason is not None:
            return f"certified key: {reason}"
        for scope, name in ((ca_blob, "by its CA"), (b"", "for any CA")):
            for section in self.certificates.get(scope, ()):
                reason = section.revokes(serial, key_id)
                if reason is not None:
                    return f"certificate {reason} revoked {name}"
        reason = self.key_revoked(ca_blob)
        return f"certificate authority: {reason}" if reason is not None else None


def parse_krl(data: bytes) -> KeyRevocationList:
    """Read a KRL. :raises KrlError: anything not understood (see the module's doc)."""
    if not data.startswith(KRL_MAGIC):
        raise KrlError("not a KRL (no SSHKRL magic)")
    reader = _Reader(data[len(KRL_MAGIC) :], "KRL header")
    version = reader.uint32()
    if version != _FORMAT_VERSION:
        raise KrlError(f"KRL format version {version} is not supported (only 1)")
    krl = KeyRevocationList(version=reader.uint64(), generated=reader.uint64())
    reader.uint64()  # flags: none defined
    reader.string()  # reserved
    krl.comment = reader.text()
    number = 0
    while reader.remaining():
        number += 1
        section_type = reader.byte()
        what = f"KRL section {number} (type {section_type})"
        if section_type == _SECTION_SIGNATURE:
            raise KrlError(f"{what}: signed KRLs are refused (as OpenSSH >= 9.4 refuses them)")
        section = _Reader(reader.string(), what)
        if section_type == _SECTION_CERTIFICATES:
            _certificates_section(section, krl)
        elif section_type == _SECTION_EXPLICIT_KEY:
            krl.keys.update(_blobs(section, 0, what))
        elif section_type == _SECTION_FINGERPRINT_SHA1:
            krl.sha1.update(_blobs(section, 20, what))
        elif section_type == _SECTION_FINGERPRINT_SHA256:
            krl.sha256.update(_blobs(section, 32, what))
        elif section_type == _SECTION_EXTENSION:
            _extension(section, what)
        else:
            raise KrlError(f"{what}: unknown section type")
        section.done()
    return krl


def _blobs(section: _Reader, size: int, what: str) -> list[bytes]:
    blobs = []
    while section.remaining():
        blob = section.string()
        if size and len(blob) != size:
            raise KrlError(f"{what}: a hash of {len(blob)} bytes, not {size}")
        blobs.append(blob)
    return blobs


def _extension(section: _Reader, what: str) -> None:
    name = section.text()
    critical = section.boolean()
    section.string()
    if critical:
        raise KrlError(f"{what}: critical extension {name!r} is not supported")


def _serial_range(low: int, high: int, what: str) -> tuple[int, int]:
    if low == 0 or low > high:
        raise KrlError(f"{what}: bad serial range {low}-{high}")
    return low, high


def _certificates_section(section: _Reader, krl: KeyRevocationList) -> None:
    ca_blob = section.string()  # empty: the section is about any CA
    section.string()  # reserved
    revocations = _CertificateRevocations()
    krl.certificates.setdefault(ca_blob, []).append(revocations)
    number = 0
    while section.remaining():
        number += 1
        part_type = section.byte()
        what = f"KRL certificate subsection {number} (type {part_type:#x})"
        part = _Reader(section.string(), what)
        if part_type == _CERT_SERIAL_LIST:
            while part.remaining():
                serial = part.uint64()
                revocations.serial_ranges.append(_serial_range(serial, serial, what))
        elif part_type == _CERT_SERIAL_RANGE:
            low, high = part.uint64(), part.uint64()
            revocations.serial_ranges.append(_serial_range(low, high, what))
        elif part_type == _CERT_SERIAL_BITMAP:
            offset, bits = part.uint64(), part.mpint()
            if (bits & 1 and offset == 0) or (bits and offset + bits.bit_length() - 1 > _U64_MAX):
                raise KrlError(f"{what}: the bitmap holds serial 0 or wraps past 2**64")
            revocations.serial_bitmaps.append((offset, bits))
        elif part_type == _CERT_KEY_ID:
            while part.remaining():
                revocations.key_ids.add(part.text())
        elif part_type == _CERT_EXTENSION:
            _extension(part, what)
        else:
            raise KrlError(f"{what}: unknown certificate subsection type")
        part.done()
