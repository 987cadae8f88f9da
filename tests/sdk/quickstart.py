# The SDK README's scenarios, run by tests/sdk/python_sdk_spec.lua.
import os
import tempfile

from agentcube import CodeInterpreterClient

token = os.environ["AGENTCUBE_TOKEN"]

# Quick start
with CodeInterpreterClient(auth_token=token) as client:
    print(client.run_code("python", "print('Hello, AgentCube!')"))

# Manual lifecycle
client = CodeInterpreterClient(ttl=3600, auth_token=token)
try:
    client.run_code("python", "print('Session started')")
    client.write_file("42", "/tmp/value.txt")
    print("value=" + client.run_code(
        "python", "print(open('/tmp/value.txt').read())").strip())
finally:
    client.stop()

# File operations
work = tempfile.mkdtemp()
with open(os.path.join(work, "data.csv"), "w") as f:
    f.write("a,b\n1,2\n3,4\n")
with CodeInterpreterClient(auth_token=token) as client:
    client.upload_file(os.path.join(work, "data.csv"), "/workspace/data.csv")
    client.run_code("python", """
import csv
rows = list(csv.DictReader(open('/workspace/data.csv')))
with open('/workspace/summary.csv', 'w') as out:
    out.write('sum_a,%d\\n' % sum(int(r['a']) for r in rows))
""")
    client.download_file("/workspace/summary.csv",
                         os.path.join(work, "summary.csv"))
    print("summary=" + open(os.path.join(work, "summary.csv")).read().strip())
    assert "data.csv" in [f["name"] for f in client.list_files()]

# Session reuse
client1 = CodeInterpreterClient(auth_token=token)
session_id = client1.session_id
client1.write_file("42", "/tmp/value.txt")
client2 = CodeInterpreterClient(session_id=session_id, auth_token=token)
print("reused=" + client2.run_code(
    "python", "print(open('/tmp/value.txt').read())").strip())
client2.stop()
