"""PickleScanner on real pickles built here (never loaded): raw, and inside a PyTorch zip."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections import OrderedDict

from shipdeck.adapters.picklescan_scanner import PickleScanner


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo",))


def test_a_raw_pickle_importing_os_system_is_dangerous() -> None:
    found = PickleScanner().scan("model.pkl", io.BytesIO(pickle.dumps(_Exploit())))
    assert found.dangerous == ("posix.system",)
    assert found.error is None


def test_a_torch_zip_is_judged_by_its_inner_data_pkl() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(_Exploit(), protocol=2))
        z.writestr("archive/version", "3\n")
    buf.seek(0)
    assert PickleScanner().scan("weights.pt", buf).dangerous == ("posix.system",)


def test_plain_state_is_clean() -> None:
    state = pickle.dumps(OrderedDict(w=[1.0, 2.0]), protocol=2)
    found = PickleScanner().scan("pytorch_model.bin", io.BytesIO(state))
    assert found.dangerous == ()
