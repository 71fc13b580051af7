"""README's "A card's life with curl" is true: its shell block, run as written against the platform
that `make run` serves (demo data loaded, worker and beat running), buys, pays, uses and refunds a
card, and the worker then pays the refund back."""

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.net import free_port, get_json, platform_start

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## A card's life with curl"


def readme_walkthrough() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index(SECTION) :]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "README's curl section has no sh block"
    return match.group(1)


def json_values(output: str) -> list:
    """The JSON documents the block prints, one after another (curl adds no newline)."""
    decoder, values, at = json.JSONDecoder(), [], 0
    while True:
        while at < len(output) and output[at].isspace():
            at += 1
        if at == len(output):
            return values
        value, at = decoder.raw_decode(output, at)
        values.append(value)


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="the walkthrough needs curl and jq")
def test_the_readme_curl_walkthrough_buys_uses_and_refunds_a_card_against_make_run(embedded_env, tmp_path):
    script = readme_walkthrough()
    assert "API=http://127.0.0.1:8000/api/v1" in script
    port = free_port()
    script = script.replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}")
    # What `make run` does after migrating: the demo data, then the web server, worker and beat.
    subprocess.run([sys.executable, "manage.py", "seed_demo"], cwd=ROOT, env=embedded_env, check=True, timeout=300)
    log_path = tmp_path / "platform.log"
    with log_path.open("w") as log:
        platform = platform_start(env=embedded_env, port=port, log=log)
        try:
            deadline = time.monotonic() + 90
            while get_json(f"http://127.0.0.1:{port}/healthz") is None:
                assert platform.poll() is None and time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.5)
            # The script's last line reads the card again: print the card's id after it.
            tail = '\necho "{\\"card\\": \\"$CARD_ID\\"}"\n'
            done = subprocess.run(
                ["bash", "-c", script + tail], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
            )
            assert done.returncode == 0, done.stderr
            merchant, consumer, paid, confirmed, refused, refund, card, ids = json_values(done.stdout)

            assert merchant["name"] == "阳光健身" and merchant["district"] == "朝阳区"
            assert consumer["display_name"] == "Alice"
            assert paid["state"] == "cooling_off" and paid["escrow_balance"] == 100_000
            assert paid["cooling_off_ends_at"]
            assert (tmp_path / "contract.pdf").read_bytes().startswith(b"%PDF")
            assert confirmed == {"state": "confirmed", "released": 10_000}
            assert refused["code"] == "cooling_off_expired"
            # Voluntary: escrow 90,000 less the 5 % fee (4,500), which goes to the merchant.
            assert (refund["reason"], refund["amount"], refund["fee"]) == ("voluntary", 85_500, 4_500)
            assert card == {
                "state": "refunded",
                "price": 100_000,
                "escrow_balance": 0,
                "released_total": 14_500,
                "refunded_total": 85_500,
            }

            # The worker pays the refund back through the sandbox gateway (the outbox). API.md has no
            # read of a refund, so ask the database, as an operator would.
            ask = f"from refunds.models import Refund; print(Refund.objects.get(card_id='{ids['card']}').state)"
            deadline = time.monotonic() + 60
            while True:
                state = subprocess.run(
                    [sys.executable, "manage.py", "shell", "--no-imports", "-c", ask],
                    cwd=ROOT, env=embedded_env, capture_output=True, text=True, check=True, timeout=60,
                ).stdout.strip()  # fmt: skip
                if state == "paid" or time.monotonic() > deadline:
                    break
                time.sleep(1)
            assert state == "paid", log_path.read_text()
        finally:
            platform.terminate()
            platform.wait(timeout=30)
