"""Attacks on the gRPC port of a real serving process: malformed tensors are refused with a
client-error status (never UNKNOWN / INTERNAL), and a client holding many idle streams
open neither reaches past the per-connection stream cap nor stops another client."""
import threading

import grpc
import pytest
from mlserver.grpc import dataplane_pb2 as pb
from mlserver.grpc import dataplane_pb2_grpc as pb_grpc

from recsys.serving.server import GRPC_MAX_CONCURRENT_STREAMS
from tests.factories import served_champion
from tests.serving.mlserver_process import running_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOKEN = "service-token-for-grpc-attacks"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
CLIENT_ERRORS = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                 grpc.StatusCode.FAILED_PRECONDITION}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grpc-attacks")
    processed, _ = served_champion(tmp / "state", events=3_000, seed=5)
    with running_server(tmp, tmp / "state", {"RECSYS_SERVING_TOKEN": TOKEN}) as running:
        yield running, str(processed.train["user_id"].iloc[0])


def tensor(name: str, datatype: str, shape: list[int], **contents):
    return pb.ModelInferRequest.InferInputTensor(
        name=name, datatype=datatype, shape=shape, contents=pb.InferTensorContents(**contents))


def infer(*inputs) -> pb.ModelInferRequest:
    return pb.ModelInferRequest(model_name="recsys", inputs=list(inputs))


def valid(user: str) -> pb.ModelInferRequest:
    return infer(tensor("user_id", "BYTES", [1], bytes_contents=[user.encode()]))


def assert_still_serving(running, user: str) -> None:
    with grpc.insecure_channel(running.grpc) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
        assert stub.ModelReady(pb.ModelReadyRequest(name="recsys"), timeout=10).ready
        answer = stub.ModelInfer(valid(user), timeout=10, metadata=AUTH)
    assert [output.name for output in answer.outputs] == ["item_ids", "scores"]
    assert len(answer.outputs[0].contents.bytes_contents) == 10


MALFORMED = {
    "wrong datatype": infer(tensor("user_id", "FP32", [1], fp32_contents=[1.0])),
    "unknown datatype": infer(tensor("user_id", "NONSENSE", [1], bytes_contents=[b"u"])),
    "shape larger than the data": infer(tensor("user_id", "BYTES", [3], bytes_contents=[b"u"])),
    "shape smaller than the data": infer(
        tensor("user_id", "BYTES", [1], bytes_contents=[b"u", b"v", b"w"])),
    "negative shape": infer(tensor("user_id", "BYTES", [-1], bytes_contents=[b"u"])),
    "huge shape": infer(tensor("user_id", "BYTES", [2**62, 2**62], bytes_contents=[b"u"])),
    "missing user_id": infer(tensor("k", "INT32", [1], int_contents=[5])),
    "no inputs at all": infer(),
    "user id not UTF-8": infer(tensor("user_id", "BYTES", [1], bytes_contents=[b"\xff\xfe\xfa"])),
    "k as BYTES": infer(tensor("user_id", "BYTES", [1], bytes_contents=[b"u"]),
                        tensor("k", "BYTES", [1], bytes_contents=[b"\xff"])),
    "two values for k": infer(tensor("user_id", "BYTES", [1], bytes_contents=[b"u"]),
                              tensor("k", "INT32", [2], int_contents=[1, 2])),
    "unknown model": pb.ModelInferRequest(
        model_name="not-a-model", inputs=[tensor("user_id", "BYTES", [1],
                                                 bytes_contents=[b"u"])]),
}


def test_every_malformed_tensor_is_a_client_error_and_serving_goes_on(server):
    running, user = server
    codes = {}
    with grpc.insecure_channel(running.grpc) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        for case, request in MALFORMED.items():
            try:
                stub.ModelInfer(request, timeout=10, metadata=AUTH)
                codes[case] = ("answered", "")
            except grpc.RpcError as refused:
                codes[case] = (refused.code(), refused.details())
    wrong = {case: code for case, code in codes.items() if code[0] not in CLIENT_ERRORS}
    assert wrong == {}, (codes, running.log_tail())
    assert codes["wrong datatype"] == (grpc.StatusCode.INVALID_ARGUMENT,
                                       "input 'user_id' must have datatype BYTES, got FP32")
    assert codes["shape larger than the data"] == (
        grpc.StatusCode.INVALID_ARGUMENT, "input 'user_id' has shape [3] but holds 1 value")
    assert codes["huge shape"][0] == grpc.StatusCode.INVALID_ARGUMENT
    assert codes["negative shape"][0] == grpc.StatusCode.INVALID_ARGUMENT
    assert codes["missing user_id"][0] == grpc.StatusCode.INVALID_ARGUMENT
    assert "missing input 'user_id'" in codes["missing user_id"][1]
    assert codes["user id not UTF-8"][0] == grpc.StatusCode.INVALID_ARGUMENT
    assert codes["unknown model"][0] == grpc.StatusCode.NOT_FOUND
    assert_still_serving(running, user)


def idle_stream(stub, release: threading.Event):
    """A ModelStreamInfer call whose client never sends a message until `release`."""
    def requests():
        release.wait()
        return
        yield  # a generator that yields nothing
    return stub.ModelStreamInfer(requests(), metadata=AUTH, timeout=120)


def test_idle_streams_past_the_cap_wait_on_their_connection_and_others_are_answered(server):
    running, user = server
    release = threading.Event()
    # its own subchannel pool: gRPC otherwise shares one connection between a process's
    # channels to the same address, and the other client must be on another connection
    attacker = grpc.insecure_channel(running.grpc,
                                     options=[("grpc.use_local_subchannel_pool", 1)])
    try:
        stub = pb_grpc.GRPCInferenceServiceStub(attacker)
        streams = [idle_stream(stub, release) for _ in range(2 * GRPC_MAX_CONCURRENT_STREAMS)]
        # another client, on its own connection, is answered while 200 streams are held
        assert_still_serving(running, user)
        # the attacker's own connection holds only the cap: its next call waits for a stream
        with pytest.raises(grpc.RpcError) as queued:
            stub.ModelInfer(valid(user), timeout=3, metadata=AUTH)
        assert queued.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        release.set()
        for stream in streams:
            stream.cancel()
        attacker.close()
    assert_still_serving(running, user)
