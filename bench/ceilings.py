"""What the hardware allows, measured in the same run as the rows.

Each ceiling is the bare primitive a request cannot avoid, with ``cryptography`` and
``argon2-cffi`` as the service uses them: RSA-2048 PKCS#1 v1.5 SHA-256 signatures (one per
issued access token), their verification (one per JWT checked), and argon2id verification
at the configured ``ARGON2_*`` parameters (one per password login). "All cores" runs one
process per core at the same time and adds their rates; "one core" runs one process.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from .report import ARGON2_ALL, RSA_SIGN_ALL, RSA_VERIFY_ALL, RSA_VERIFY_ONE

# about the size of a JWS signing input of our access tokens (header.claims)
_MESSAGE = b"eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImJlbmNoIn0." + b"x" * 560
# workers start together at this many seconds after being submitted (key generation,
# interpreter start-up and imports happen before)
_START_DELAY = 2.0


@dataclass(frozen=True)
class Argon2Parameters:
    time_cost: int
    memory_kib: int
    parallelism: int

    def describe(self) -> str:
        return f"m={self.memory_kib} KiB, t={self.time_cost}, p={self.parallelism}"


@dataclass(frozen=True)
class Rate:
    """Operations per wall-clock second, and CPU seconds each operation took.

    The first is what the machine delivered during the run (other users' load lowers
    it); the second hardly depends on that load, so it compares across runs.
    """

    per_second: float
    cpu_seconds: float


def _loop(operation, start_at: float, seconds: float) -> Rate:
    """How fast ``operation`` runs for ``seconds`` from ``start_at``, in this process."""
    operation()  # warm up before the clock starts
    while time.time() < start_at:
        time.sleep(0.001)
    count, started, cpu_started = 0, time.perf_counter(), time.process_time()
    deadline = started + seconds
    while True:
        operation()
        count += 1
        if count % 8 == 0 and time.perf_counter() >= deadline:
            break
    return Rate(count / (time.perf_counter() - started),
                (time.process_time() - cpu_started) / count)


def _rsa_key():
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def rsa_sign_rate(start_at: float, seconds: float) -> Rate:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    key, pad, digest = _rsa_key(), padding.PKCS1v15(), hashes.SHA256()
    return _loop(lambda: key.sign(_MESSAGE, pad, digest), start_at, seconds)


def rsa_verify_rate(start_at: float, seconds: float) -> Rate:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    key, pad, digest = _rsa_key(), padding.PKCS1v15(), hashes.SHA256()
    public, signature = key.public_key(), key.sign(_MESSAGE, pad, digest)
    return _loop(lambda: public.verify(signature, _MESSAGE, pad, digest), start_at, seconds)


def argon2_verify_rate(start_at: float, seconds: float, params: Argon2Parameters) -> Rate:
    import argon2

    hasher = argon2.PasswordHasher(time_cost=params.time_cost, memory_cost=params.memory_kib,
                                   parallelism=params.parallelism, type=argon2.Type.ID)
    password = "correct horse battery staple"
    password_hash = hasher.hash(password)
    return _loop(lambda: hasher.verify(password_hash, password), start_at, seconds)


def parallel_rate(function, processes: int, seconds: float, *args) -> Rate:
    """``processes`` processes running ``function`` at the same time: the sum of their
    rates, and the mean CPU cost of one operation."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        start_at = time.time() + _START_DELAY
        futures = [pool.submit(function, start_at, seconds, *args) for _ in range(processes)]
        rates = [future.result() for future in futures]
    return Rate(sum(r.per_second for r in rates), sum(r.cpu_seconds for r in rates) / len(rates))


def measure(cores: int, seconds: float, argon2: Argon2Parameters) -> dict[str, Rate]:
    """Every ceiling the report compares against, one after the other."""
    return {
        RSA_SIGN_ALL: parallel_rate(rsa_sign_rate, cores, seconds),
        RSA_VERIFY_ALL: parallel_rate(rsa_verify_rate, cores, seconds),
        RSA_VERIFY_ONE: parallel_rate(rsa_verify_rate, 1, seconds),
        ARGON2_ALL: parallel_rate(argon2_verify_rate, cores, seconds, argon2),
    }


def cores() -> int:
    return len(os.sched_getaffinity(0))
