"""An integrating platform's client of the Xiaowei JSON API, with the standard library only.

It signs in like a browser (the login form and its CSRF token), reads its CSRF token for POSTs from
GET /api/v1/me, starts a case (POST /api/v1/cases), completes the case's first step with the
caller's data (POST /api/v1/cases/{id}/steps/{step}), shows what is next, and downloads the case's
audit trail (GET /api/v1/cases/{id}/trail), which ``examples/verify_trail.py`` checks offline.

    python examples/api_client.py --url http://127.0.0.1:5000 --user dongao.party_branch --password P \
        --procedure V-DEC-01 --org DONGAO --data '{"matter_title": "村道硬化工程", ...}' -o trail.json

The whole API is described at /api/v1/openapi.json. Errors come back as JSON ``{"error", "message",
"errors"}`` with the HTTP status; this client prints the message and exits 1.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

# The first step of 村级重大事项决策(四议两公开): 收集议题, by the village Party organization.
SAMPLE = {"matter_title": "村道硬化工程", "matter_type": "project", "source": "villagers", "amount": "380000",
          "opinions_summary": "群众普遍支持硬化村东道路"}


class Client:
    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.csrf = ""

    def request(self, method: str, path: str, body: dict | None = None, *, form: dict | None = None):
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode("utf-8"), "application/json"
        if form is not None:
            data = urllib.parse.urlencode(form).encode("utf-8")
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if method == "POST" and self.csrf:
            headers["X-CSRF-Token"] = self.csrf
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with self.opener.open(req, timeout=60) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def json(self, method: str, path: str, body: dict | None = None) -> dict:
        status, raw = self.request(method, path, body)
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = {"error": "not_json", "message": raw[:200].decode("utf-8", "replace")}
        if status >= 400:
            raise SystemExit(f"{method} {path}: HTTP {status} {answer.get('error')}: {answer.get('message', '')} "
                             f"{answer.get('errors') or ''}".rstrip())
        return answer

    def sign_in(self, username: str, password: str) -> dict:
        """The login form is a page: take its CSRF token, post it with the credentials."""
        status, page = self.request("GET", "/login")
        token = re.search(rb'name="csrf_token" value="([^"]+)"', page)
        if status != 200 or token is None:
            raise SystemExit(f"GET /login: HTTP {status}, no login form")
        status, _ = self.request("POST", "/login", form={"username": username, "password": password,
                                                         "csrf_token": token.group(1).decode()})
        me = self.json("GET", "/api/v1/me")  # 401 when the password was wrong
        self.csrf = me["csrf_token"]
        return me


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:5000")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--procedure", default="V-DEC-01")
    parser.add_argument("--org", default="DONGAO")
    parser.add_argument("--data", default=json.dumps(SAMPLE, ensure_ascii=False), help="the first step's data (JSON)")
    parser.add_argument("-o", "--output", default="trail.json", help="where to write the trail")
    args = parser.parse_args(argv)

    client = Client(args.url)
    me = client.sign_in(args.user, args.password)
    print(f"signed in as {me['username']} ({', '.join(me['roles'])})")
    started = client.json("POST", "/api/v1/cases", {"procedure_id": args.procedure, "org": args.org,
                                                    "data": {"title": "接口发起的示例事项"}})
    case_id = started["case_id"]
    print(f"case #{case_id} started; ready: {', '.join(t['step_id'] for t in started['tasks'])}")
    case = client.json("GET", f"/api/v1/cases/{case_id}")
    mine = case["actions"]
    if not mine:
        raise SystemExit(f"case #{case_id}: the caller may do none of its ready steps")
    step = mine[0]
    result = client.json("POST", f"/api/v1/cases/{case_id}/steps/{step['step_id']}", json.loads(args.data))
    print(f"completed {step['step_id']} ({step['name']}); status {result['status']}; next: "
          + (", ".join(f"{t['step_id']} ({t['role']})" for t in result["tasks"]) or "nothing"))
    status, trail = client.request("GET", f"/api/v1/cases/{case_id}/trail")
    if status != 200:
        raise SystemExit(f"GET /api/v1/cases/{case_id}/trail: HTTP {status}")
    with open(args.output, "wb") as out:
        out.write(trail)
    print(f"trail of case #{case_id}: {len(json.loads(trail)['events'])} events written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
