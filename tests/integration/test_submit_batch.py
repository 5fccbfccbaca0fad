"""Group commit of submissions: many concurrent POST /v1/jobs on one
gateway are inserted together, yet each one is answered only after its own
row is committed, with its own id, payload and first event."""
import threading

from agentgate_test.client import TERMINAL


def test_concurrent_submissions_each_get_their_own_committed_job(tenant):
    n = 60
    results, errors = [None] * n, []

    def submit(i):
        try:
            results[i] = tenant.submit("test", {"outcome": "succeed",
                                                "result": {"i": i}})
        except BaseException as e:          # reported by the main thread
            errors.append(f"submission {i}: {e}")

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    ids = [job["id"] for job in results]
    assert len(set(ids)) == n, "job ids are not distinct"
    for i, job in enumerate(results):
        assert job["status"] == "queued" and job["last_event_id"] == 1, job
        assert job["payload"] == {"outcome": "succeed", "result": {"i": i}}, job
    for i, job in enumerate(results):
        done = tenant.wait_job(job["id"], TERMINAL)
        assert done["status"] == "succeeded", done
        assert done["result"] == {"i": i}, done


def test_payload_text_needing_escapes_round_trips(tenant):
    tricky = {"q": 'a"b\\c', "braces": "{x,y}", "comma": "1,2", "nul_like": "\\0",
              "unicode": "snow \u2603 and \U0001f600", "empty": "", "quote_only": '"',
              "nested": [{"k": "\\\"}"}]}
    job = tenant.submit("test", {"outcome": "succeed", "result": tricky})
    assert job["payload"]["result"] == tricky
    done = tenant.wait_job(job["id"], TERMINAL)
    assert done["result"] == tricky, done
    events = tenant.events(job["id"])
    assert events[0].event == "job.queued" and events[0].id == 1, events[0].data
