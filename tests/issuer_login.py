#!/usr/bin/env python3
"""Signs in and consents on the embedded authorization server as a person would, over plain HTTP
(the pages need no JavaScript): opens the authorization URL, submits the sign-in form, submits the
consent form, and prints the address the server redirects to (the client's callback, carrying
`code`, `state` and `iss`, or `error`).

    issuer_login.py URL [--user alice] [--password wonderland] [--deny] [--follow]
    issuer_login.py --wait-for-url LOGFILE [...]   # take the first authorization URL printed in LOGFILE

--follow also requests the callback, as a browser would (the conformance suite listens there).
Standard library only.
"""

import argparse
import html
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')
ACTION = re.compile(r'<form method="post" action="([^"]*)">')


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def request(opener, url, data=None):
    """(status, headers, body) of one request, redirects not followed."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with opener.open(urllib.request.Request(url, data=body), timeout=30) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def form(page, base):
    action = ACTION.search(page)
    if not action:
        raise SystemExit(f"no form on the page:\n{page[:2000]}")
    fields = {name: html.unescape(value) for name, value in HIDDEN.findall(page)}
    return urllib.parse.urljoin(base, html.unescape(action.group(1))), fields


def wait_for_url(logfile, timeout=120.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(logfile) as log:
                for line in log:
                    line = line.strip()
                    if line.startswith("http") and "/authorize?" in line:
                        return line
        except FileNotFoundError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"no authorization URL appeared in {logfile}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url", nargs="?")
    parser.add_argument("--wait-for-url")
    parser.add_argument("--user", default="alice")
    parser.add_argument("--password", default="wonderland")
    parser.add_argument("--deny", action="store_true")
    parser.add_argument("--follow", action="store_true")
    args = parser.parse_args()
    url = args.url or (args.wait_for_url and wait_for_url(args.wait_for_url))
    if not url:
        parser.error("give an authorization URL or --wait-for-url LOGFILE")

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()), NoRedirect)
    status, headers, page = request(opener, url)
    if status in (302, 303):
        print(headers["Location"])  # an error redirect straight from the authorization endpoint
        return 0
    if status != 200:
        raise SystemExit(f"authorization endpoint answered {status}:\n{page[:2000]}")
    if 'name="password"' in page:
        action, fields = form(page, url)
        fields.update(username=args.user, password=args.password)
        status, headers, page = request(opener, action, fields)
        if status != 303:
            raise SystemExit(f"sign-in answered {status}:\n{page[:2000]}")
        consent_url = urllib.parse.urljoin(action, headers["Location"])
        status, headers, page = request(opener, consent_url)
        if status in (302, 303):
            print(headers["Location"])
            return 0
        if status != 200:
            raise SystemExit(f"consent page answered {status}:\n{page[:2000]}")
        url = consent_url
    action, fields = form(page, url)
    fields["decision"] = "deny" if args.deny else "allow"
    status, headers, page = request(opener, action, fields)
    if status != 303:
        raise SystemExit(f"consent answered {status}:\n{page[:2000]}")
    callback = headers["Location"]
    print(callback)
    if args.follow:
        with urllib.request.urlopen(callback, timeout=30) as response:
            print(f"callback answered {response.status}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
