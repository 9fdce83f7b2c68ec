"""Fetches of a tracked message's image and links that no reader made: the security scanners
that open every message and follow every link before (or instead of) a person, as EmailEngine
tells them apart (``detectAutomatedRequest``, ``lib/utils/network.js``). A fetch is automated
when its client address is

* in one of the networks of Google's special-case crawlers (``GOOGLE_CRAWLER_NETWORKS``: its
  security scanner among them), or
* a host whose reverse DNS name (the first one) ends in ``barracuda.com`` or ``spfbl.net``
  with no letter or digit just before it (``SCANNER_NAMES``: Barracuda's and SPFBL's).

``is_automated`` is the decision, pure: it is handed the reverse lookup. ``ReverseNames`` is
the lookup a web process makes: the system resolver (``/etc/hosts``, then DNS), in a thread of
its own, waited for at most ``TRACKING_REVERSE_DNS_TIMEOUT`` seconds (1 s), its answer (a name,
or none) kept per address for ``LOOKUP_TTL`` seconds. A lookup that fails or does not answer
in time means "not automated": the reader's event is recorded. A lookup still running when its
wait ends keeps running, and its answer counts for the address's next fetch.

What a scanner's fetch gets is what a reader's gets (the image, the redirect); only its event
is not recorded (``mailboxes.tracking_events``), and the check runs once the answer is served
(``mailboxes.web.tracking_pages``), so no reader waits on DNS.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

LOOKUP_TTL = 3600  # seconds an address's reverse name (or that it has none) is kept
LOOKUP_CACHE_SIZE = 10_000  # addresses kept; the least recently looked up go first
LOOKUP_THREADS = 8  # lookups under way at once; past that an address is not looked up

# Google's "special-case crawlers" (developers.google.com/search/apis/ipranges/
# special-crawlers.json) as EmailEngine ships them in data/google-crawlers.json (creationTime
# 2024-02-13T23:00:54), prefix for prefix: data, never fetched at run time.
_GOOGLE_CRAWLER_PREFIXES = """
    2001:4860:4801:2008::/64 2001:4860:4801:2009::/64 2001:4860:4801:200c::/64 2001:4860:4801:200d::/64
    2001:4860:4801:2010::/64 2001:4860:4801:2011::/64 2001:4860:4801:2012::/64 2001:4860:4801:2013::/64
    2001:4860:4801:2014::/64 2001:4860:4801:2015::/64 2001:4860:4801:2016::/64 2001:4860:4801:2017::/64
    2001:4860:4801:2018::/64 2001:4860:4801:2019::/64 2001:4860:4801:201a::/64 2001:4860:4801:201b::/64
    2001:4860:4801:201c::/64 2001:4860:4801:201d::/64 2001:4860:4801:201e::/64 2001:4860:4801:2020::/64
    2001:4860:4801:2021::/64 2001:4860:4801:2022::/64 2001:4860:4801:2023::/64 2001:4860:4801:2024::/64
    2001:4860:4801:2025::/64 2001:4860:4801:2026::/64 2001:4860:4801:2027::/64 2001:4860:4801:2028::/64
    2001:4860:4801:2029::/64 2001:4860:4801:202a::/64 2001:4860:4801:202b::/64 2001:4860:4801:202c::/64
    2001:4860:4801:202d::/64 2001:4860:4801:202e::/64 2001:4860:4801:202f::/64 2001:4860:4801:2030::/64
    2001:4860:4801:2031::/64 2001:4860:4801:2032::/64 2001:4860:4801:2033::/64 2001:4860:4801:2034::/64
    2001:4860:4801:2035::/64 2001:4860:4801:2036::/64 2001:4860:4801:2037::/64 2001:4860:4801:2038::/64
    2001:4860:4801:2039::/64 2001:4860:4801:203a::/64 2001:4860:4801:203b::/64 2001:4860:4801:203c::/64
    2001:4860:4801:203d::/64 2001:4860:4801:203e::/64 2001:4860:4801:2040::/64 2001:4860:4801:2041::/64
    2001:4860:4801:2042::/64 2001:4860:4801:2043::/64 2001:4860:4801:2044::/64 2001:4860:4801:2045::/64
    2001:4860:4801:2046::/64 2001:4860:4801:2047::/64 2001:4860:4801:2048::/64 2001:4860:4801:2049::/64
    2001:4860:4801:204a::/64 2001:4860:4801:2050::/64 2001:4860:4801:2051::/64 2001:4860:4801:2052::/64
    2001:4860:4801:2053::/64 2001:4860:4801:2054::/64 2001:4860:4801:2060::/64 2001:4860:4801:2061::/64
    2001:4860:4801:2062::/64 2001:4860:4801:2063::/64 2001:4860:4801:2064::/64 2001:4860:4801:2065::/64
    2001:4860:4801:2066::/64 2001:4860:4801:2067::/64 2001:4860:4801:2068::/64 2001:4860:4801:2069::/64
    2001:4860:4801:206a::/64 2001:4860:4801:206b::/64 2001:4860:4801:206c::/64 2001:4860:4801:206d::/64
    2001:4860:4801:206e::/64 2001:4860:4801:206f::/64 2001:4860:4801:2070::/64 2001:4860:4801:2071::/64
    2001:4860:4801:2072::/64 2001:4860:4801:2073::/64 2001:4860:4801:2074::/64 2001:4860:4801:2075::/64
    2001:4860:4801:2076::/64 2001:4860:4801:2077::/64 2001:4860:4801:2078::/64 2001:4860:4801:2079::/64
    2001:4860:4801:2080::/64 2001:4860:4801:2081::/64 2001:4860:4801:2082::/64 2001:4860:4801:2083::/64
    2001:4860:4801:2084::/64 2001:4860:4801:2085::/64 2001:4860:4801:2086::/64 2001:4860:4801:2087::/64
    2001:4860:4801:2088::/64 2001:4860:4801:2090::/64 2001:4860:4801:2091::/64 2001:4860:4801:2092::/64
    2001:4860:4801:2093::/64
    192.178.17.0/27 209.85.238.0/27 209.85.238.32/27 209.85.238.64/27 209.85.238.96/27
    209.85.238.128/27 209.85.238.160/27 209.85.238.192/27 209.85.238.224/27 66.249.87.0/27
    66.249.87.32/27 66.249.87.64/27 66.249.87.96/27 66.249.87.128/27 66.249.87.160/27
    66.249.87.192/27 66.249.87.224/27 66.249.89.0/27 66.249.89.32/27 66.249.89.64/27
    66.249.89.96/27 66.249.89.128/27 66.249.89.160/27 66.249.89.192/27 66.249.89.224/27
    66.249.90.0/27 66.249.90.32/27 66.249.90.96/27 66.249.90.128/27 66.249.90.160/27
    66.249.90.192/27 66.249.90.224/27 66.249.91.0/27 66.249.91.32/27 66.249.91.64/27
    66.249.91.96/27 66.249.91.128/27 66.249.91.160/27 66.249.91.192/27 66.249.91.224/27
    66.249.92.0/27 66.249.92.32/27 66.249.92.64/27 66.249.92.96/27 66.249.92.128/27
    66.249.92.160/27 66.249.92.192/27 72.14.199.0/27 72.14.199.32/27 72.14.199.64/27
    72.14.199.96/27 72.14.199.128/27 72.14.199.160/27 72.14.199.192/27 72.14.199.224/27
    74.125.148.0/27 74.125.148.32/27 74.125.148.64/27 74.125.148.96/27 74.125.148.128/27
    74.125.148.160/27 74.125.148.192/27 74.125.148.224/27 74.125.149.0/27 74.125.149.32/27
    74.125.149.64/27 74.125.149.96/27 74.125.149.128/27 74.125.149.160/27 74.125.149.192/27
    74.125.149.224/27 74.125.150.0/27 74.125.150.32/27 74.125.150.64/27 74.125.151.0/27
    74.125.151.32/27 74.125.151.64/27 74.125.151.96/27 74.125.151.128/27 74.125.151.160/27
    74.125.151.192/27 74.125.151.224/27 74.125.216.0/27 74.125.216.32/27 74.125.216.64/27
    74.125.216.96/27 74.125.216.128/27 74.125.216.160/27 74.125.216.192/27 74.125.216.224/27
    74.125.217.0/27 74.125.217.32/27 74.125.217.64/27 74.125.217.96/27 74.125.217.128/27
    74.125.218.0/27 74.125.218.32/27 74.125.218.64/27 74.125.218.96/27 74.125.218.128/27
    74.125.218.160/27 74.125.218.192/27 74.125.218.224/27 74.125.219.0/27 74.125.219.32/27
"""
GOOGLE_CRAWLER_NETWORKS = tuple(ipaddress.ip_network(prefix)
                                for prefix in _GOOGLE_CRAWLER_PREFIXES.split())
# EmailEngine's expression, on the first name, trimmed and lower-cased (and here without the
# trailing dot of an absolute name): "scan.barracuda.com", "x-barracuda.com", not
# "notbarracuda.com" nor "barracuda.com.example".
SCANNER_NAMES = re.compile(r"\bbarracuda\.com$|\bspfbl\.net$", re.IGNORECASE)


def is_automated(address: str, reverse_name: Callable[[str], str | None]) -> bool:
    """Whether a fetch from ``address`` (the client's, as ``REMOTE_ADDR`` has it) is a
    scanner's: in Google's crawler networks (then no lookup is made), or named as Barracuda's
    or SPFBL's by ``reverse_name(address)``, which answers None for no name (a failed lookup
    too). Not an IP address: not automated. An IPv4-mapped IPv6 address (``::ffff:a.b.c.d``,
    a dual-stack listener's IPv4 peer) is its IPv4 address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    ip = getattr(ip, "ipv4_mapped", None) or ip
    if any(ip in network for network in GOOGLE_CRAWLER_NETWORKS):
        return True
    name = reverse_name(str(ip))
    return bool(name) and SCANNER_NAMES.search(name.strip().rstrip(".")) is not None


def system_reverse_name(address: str) -> str:
    """The system resolver's name for ``address`` (``/etc/hosts``, then DNS: the PTR record);
    raises ``OSError`` when there is none."""
    return socket.gethostbyaddr(address)[0]


class ReverseNames:
    """``address`` → its reverse name, or None (no name, a failed lookup, or no answer within
    ``timeout`` seconds), through ``resolve`` (an address → a name, or ``OSError``).

    Each lookup runs in a daemon thread of its own, at most ``threads`` at once (past that an
    address gets None at once and is not remembered), so a resolver that hangs holds neither a
    request nor the process's exit. An answer is kept ``ttl`` seconds for ``size`` addresses at
    most; an address looked up again while its lookup runs waits for that one."""

    def __init__(self, resolve: Callable[[str], str], *, timeout: float,
                 ttl: float = LOOKUP_TTL, size: int = LOOKUP_CACHE_SIZE,
                 threads: int = LOOKUP_THREADS, clock: Callable[[], float] = time.monotonic):
        self._resolve, self._timeout, self._ttl, self._size = resolve, timeout, ttl, size
        self._clock = clock
        self._slots = threading.BoundedSemaphore(threads)
        self._lock = threading.Lock()
        self._answers: OrderedDict[str, tuple[float, Future]] = OrderedDict()

    def __call__(self, address: str) -> str | None:
        with self._lock:
            now = self._clock()
            kept = self._answers.get(address)
            if kept is not None and kept[0] > now:
                answer = kept[1]
                self._answers.move_to_end(address)
            else:
                if not self._slots.acquire(blocking=False):
                    return None
                answer = Future()
                self._answers[address] = (now + self._ttl, answer)
                self._answers.move_to_end(address)
                while len(self._answers) > self._size:
                    self._answers.popitem(last=False)
                threading.Thread(target=self._look_up, args=(address, answer), daemon=True,
                                 name="reverse-dns").start()
        try:
            return answer.result(timeout=self._timeout)
        except TimeoutError:
            return None

    def _look_up(self, address: str, answer: Future) -> None:
        name = None
        try:
            name = self._resolve(address)
        except (OSError, UnicodeError):
            pass  # no name (NXDOMAIN, no PTR record), or the resolver failed: not a scanner
        except Exception:
            logger.exception("The reverse lookup of %s failed", address)
        finally:
            self._slots.release()
            answer.set_result(name)


@lru_cache(maxsize=None)
def _reverse_names(resolver: str, timeout: float) -> ReverseNames:
    return ReverseNames(import_string(resolver), timeout=timeout)


def skipped(address: str) -> bool:
    """Whether a tracking event of a fetch from ``address`` is left out: the fetch is automated
    (``is_automated``, through this process's ``ReverseNames`` of the resolver the
    ``TRACKING_REVERSE_DNS`` setting names) and ``EMAILAPI_TRACKING_SKIP_AUTOMATED`` is on."""
    if not settings.TRACKING_SKIP_AUTOMATED:
        return False
    names = _reverse_names(settings.TRACKING_REVERSE_DNS, settings.TRACKING_REVERSE_DNS_TIMEOUT)
    return is_automated(address, names)
