"""Signs the requests read from stdin (a JSON list) with botocore's SigV4Auth and prints, for
each, the headers botocore sets. Used by SigV4Tests to compare signatures byte for byte."""
import base64
import datetime
import json
import sys
from unittest import mock

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

results = []
for case in json.load(sys.stdin):
    request = AWSRequest(method=case["method"], url=case["url"], data=base64.b64decode(case["body"]))
    for name, value in case["headers"]:
        request.headers[name] = value  # HTTPHeaders keeps repeated names
    credentials = Credentials(case["accessKeyId"], case["secretAccessKey"], case.get("sessionToken"))
    moment = datetime.datetime.fromtimestamp(case["epochSeconds"], tz=datetime.timezone.utc).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=moment):
        SigV4Auth(credentials, case["service"], case["region"]).add_auth(request)
    results.append({
        "authorization": request.headers["Authorization"],
        "date": request.headers["X-Amz-Date"],
        "token": request.headers.get("X-Amz-Security-Token"),
    })
json.dump(results, sys.stdout)
