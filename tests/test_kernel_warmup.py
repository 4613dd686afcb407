"""``nightpipe doctor --warm`` compiles the specialisations a night uses (issue 22: the first night)."""

from __future__ import annotations

import numpy as np

from nightpipe.config_sections import PhotometryConfig
from nightpipe.kernel_warmup import WARM_SHAPE, warm_kernels


def _signatures() -> dict[str, int]:
    from numba.core.registry import CPUDispatcher

    import nightpipe.calib.apply_kernel as apply_kernel
    import nightpipe.photometry.aperture_kernel as aperture_kernel
    import nightpipe.photometry.background as background
    import nightpipe.photometry.segments as segments

    found = {}
    for module in (apply_kernel, aperture_kernel, background, segments):
        for name, value in vars(module).items():
            if isinstance(value, CPUDispatcher):
                found[f"{module.__name__}.{name}"] = len(value.signatures)
    return found


def test_after_the_warm_up_a_frame_compiles_nothing_new() -> None:
    stages = warm_kernels()
    assert [s.name for s in stages] == ["masters", "calibrate", "photometry"]
    before = _signatures()
    assert before["nightpipe.photometry.aperture_kernel._photometry_kernel"] >= 1
    from nightpipe.calib.apply import ApplyParams, MasterArrays, apply_calibration
    from nightpipe.photometry.measure import CameraParams, measure_frame
    from nightpipe.photometry.synthetic import make_star_field

    field = make_star_field((160, 200), 25, seed=3, min_separation=12)
    raw = np.ascontiguousarray(field.data, dtype=np.float32)
    cal = apply_calibration(raw, MasterArrays(), ApplyParams(exptime=10.0, gain=1.0, saturation=4095.0))
    meas = measure_frame(cal.data, PhotometryConfig(), mask=cal.mask, uncertainty=cal.uncertainty,
                         camera=CameraParams(gain=1.0, read_noise=15.0, saturation=4095.0))  # fmt: skip
    assert meas.detections.x.size > 10
    assert _signatures() == before
    assert WARM_SHAPE[0] >= 64
