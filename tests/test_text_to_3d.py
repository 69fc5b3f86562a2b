"""The text-to-3D export (sdskit/text_to_3d.py) on the CPU, at tiny sizes: the files, the mesh
(through trimesh) against a known object, and the interactive viewer's HTML."""

import base64
import html
import io
import re
from dataclasses import replace

import numpy as np
import pytest
import torch
import trimesh

from sdskit import nerf as N
from sdskit import text_to_3d as T
from sdskit.oracle import TargetField, oracle_config

ORANGE, TEAL = np.array([0.95, 0.45, 0.1]), np.array([0.1, 0.5, 0.55])


@pytest.fixture(scope="module")
def target():
    return TargetField(oracle_config().nerf)  # an orange sphere beside a teal box


@pytest.fixture(scope="module")
def target_mesh(target, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mesh")
    glb, obj = T.export_mesh(target, folder, resolution=40, threshold=target.peak / 2)
    return glb, obj


def test_mesh_of_a_known_object(target, target_mesh):
    glb, obj = target_mesh
    assert glb.name == "mesh.glb" and obj.name == "mesh.obj"
    mesh = trimesh.load(glb, force="mesh")
    # the volume inside the surface sigma = peak / 2 (the SDF's zero set): sphere + box
    sphere = 4 / 3 * np.pi * 0.27 ** 3
    box = float(torch.prod(2 * target.box_half))
    assert mesh.volume > 0, "faces wound inward: the volume comes out negative"
    assert mesh.volume == pytest.approx(sphere + box, rel=0.1), (mesh.volume, sphere + box)
    # vertex colours: the sphere's vertices orange, the box's teal
    colours = mesh.visual.vertex_colors[:, :3] / 255.0
    sphere_sdf, box_sdf = (d.numpy() for d in target._sdf(torch.tensor(mesh.vertices).float()))
    on_sphere, on_box = box_sdf > 0.1, sphere_sdf > 0.1  # clear of the other object
    assert on_sphere.sum() > 10 and on_box.sum() > 10
    assert np.abs(colours[on_sphere, 0] - ORANGE[0]).max() < 0.05
    assert np.abs(colours[on_box, 0] - TEAL[0]).max() < 0.05
    # the OBJ holds the same mesh, colours too
    again = trimesh.load(obj, force="mesh", process=False)
    assert len(again.faces) == len(mesh.faces)
    assert again.visual.kind == "vertex"


def test_no_surface_writes_no_mesh(target, tmp_path):
    notes = []
    assert T.export_mesh(target, tmp_path, resolution=8, threshold=1e6, notes=notes) == (None, None)
    assert "No surface" in notes[0] and not list(tmp_path.iterdir())


def test_export_writes_every_file(tmp_path):
    torch.manual_seed(0)
    cfg = T.TextTo3DConfig(nerf=N.NeRFConfig(grid_levels=4, grid_max_res=32, num_samples=16),
                           export_size=16, turntable_frames=4, mesh_resolution=24, out_dir=str(tmp_path))
    result = T.TextTo3DResult(model=N.NeRF(cfg.nerf), config=cfg, losses=[], seconds=0.0, steps=0)
    T.export(result, tmp_path, "cpu")
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {"turntable.gif", "front.png", "normals.png", "depth.png", "mesh.glb", "mesh.obj"}
    assert result.mesh == tmp_path / "mesh.glb" and result.mesh_obj == tmp_path / "mesh.obj"
    assert len(trimesh.load(result.mesh, force="mesh").faces) > 0  # the initial blob is a ball


def test_viewer_html_embeds_the_mesh_and_a_still(target_mesh):
    mesh = trimesh.load(target_mesh[0], force="mesh")
    still = (b"\x89PNG\r\n\x1a\n" + bytes(range(40)))  # any bytes: only carried
    view = T.MeshView(mesh, still, height=300)
    bundle = view._repr_mimebundle_()
    assert set(bundle) == {"text/html", "image/png", "text/plain"}
    assert base64.b64decode(bundle["image/png"]) == still
    page = bundle["text/html"]
    assert f'src="data:image/png;base64,{base64.b64encode(still).decode()}"' in page
    srcdoc = html.unescape(re.search(r'<iframe srcdoc="([^"]*)"', page).group(1))
    assert "<script src" not in srcdoc and "import(" not in srcdoc, "the viewer must need no network"
    glb = base64.b64decode(re.search(r'base64_data="([A-Za-z0-9+/=]+)"', srcdoc).group(1))
    shown = trimesh.load(io.BytesIO(glb), file_type="glb", force="mesh")
    assert len(shown.faces) == len(mesh.faces)
    assert np.allclose(np.sort(shown.vertices, axis=0), np.sort(mesh.vertices, axis=0), atol=1e-5)
    # no still: only the viewer
    assert set(T.MeshView(mesh)._repr_mimebundle_()) == {"text/html", "text/plain"}


def test_export_pieces_on_a_cpu():
    assert T.export_samples("cpu", replace(N.NeRFConfig())) == T.MAX_EXPORT_SAMPLES
