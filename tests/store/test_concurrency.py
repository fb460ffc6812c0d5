"""Several processes on one store: first opens race, writes interleave, none is lost."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.store.conftest import Backend

WRITER = textwrap.dedent(
    """
    import sys
    from heldout.evaluators._score import Score
    from heldout.store import Store

    url, worker, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print("ready", flush=True)
    sys.stdin.readline()  # the start signal, once both writers are imported
    store = Store.open(url)
    store.begin_run("shared", name="shared", kind="eval", config={})
    for i in range(n):
        store.write_score(
            "shared",
            Score(sample_id=f"s{i}", cohort="c", evaluator=f"e{worker}", status="ok", value=1.0),
        )
    store.close()
    """
)


def test_two_processes_writing_at_once_lose_nothing(backend: Backend) -> None:
    n = 1000
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, backend.url, str(worker), str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in (1, 2)
    ]
    try:
        for writer in writers:
            assert writer.stdout is not None
            assert writer.stdout.readline().strip() == "ready"
        # Start both at once: neither finds the schema, so both migrate the same empty
        # database, then their writes interleave.
        for writer in writers:
            assert writer.stdin is not None
            writer.stdin.write("go\n")
            writer.stdin.flush()
        for writer in writers:
            _, err = writer.communicate(timeout=120)
            assert writer.returncode == 0, err
    finally:
        # A failed assertion must not leave a writer running into the next test.
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
            writer.wait()
            for stream in (writer.stdin, writer.stdout, writer.stderr):
                if stream is not None:
                    stream.close()
    with backend.open() as store:
        finished = store.finished("shared")
    assert len(finished) == 2 * n
    assert {evaluator for _, evaluator in finished} == {"e1", "e2"}
