"""Raw requests at old versions through kafka-python's own codecs, and its reader of
magic 0/1 message sets: the tools of the old-client suites (test_old_clients.py,
test_old_versions_vs_kafka.py)."""
from kafka import KafkaAdminClient
from kafka.record import MemoryRecords


def send_raw(admin, request):
    """One request on an admin client's connection to node 1, at the version its
    api_version table and the request's max_version pick."""
    async def send():
        return await admin._manager.send(request, node_id=1)
    return admin._manager.run(send)


def send(broker, api_version, request):
    """As send_raw, through a client of its own pinned to `api_version`; a refusal the
    client raises is returned as the exception's name, as part of the answer."""
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, api_version=api_version,
                             request_timeout_ms=15000)
    try:
        return send_raw(admin, request)
    except Exception as e:
        return f"{type(e).__name__}"
    finally:
        admin.close()


def old_messages(records):
    """(offset, timestamp, key, value) of a magic 0/1 message set (a trailing partial
    message is skipped, as clients skip it)."""
    out, sets = [], MemoryRecords(records)
    while (batch := sets.next_batch()) is not None:
        out += [(r.offset, r.timestamp, r.key, r.value) for r in batch]
    return out
