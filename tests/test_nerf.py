"""Properties of the text-to-3D renderer (sdskit/nerf.py): fast, CPU only."""

import pytest
import torch

from sdskit import nerf as N

SIZE = 16


class ConstantField(torch.nn.Module):
    """A field with the same density and albedo everywhere, and a fixed background."""

    def __init__(self, sigma, albedo=(1.0, 1.0, 1.0), background=(0.2, 0.4, 0.6)):
        super().__init__()
        self.config = N.NeRFConfig(background=background)
        self.sigma, self.albedo_value = sigma, torch.tensor(albedo)
        self.bg = torch.tensor(background)

    def density(self, x):
        return torch.full(x.shape[:1], float(self.sigma))

    def query(self, x):
        return self.density(x), self.albedo_value.expand(x.shape[0], 3)

    def background(self, d):
        return self.bg.expand(d.shape[0], 3)


def inside_camera(n=3):
    """Cameras whose every ray hits the unit ball (radius 1.2, fov 40: rays within 20 deg of the axis)."""
    g = torch.Generator().manual_seed(1)
    return N.Camera(torch.full((n,), 1.2), torch.rand(n, generator=g) * 90,
                    torch.rand(n, generator=g) * 360 - 180, torch.full((n,), 40.0))


@pytest.mark.parametrize("shading", ["albedo", "textureless"])
def test_dense_white_field_renders_white_and_opaque(shading):
    field = ConstantField(sigma=1e4)
    out = N.render(field, inside_camera(), SIZE, SIZE, shading=shading,
                   light_position=inside_camera().position)
    assert out["opacity"].shape == (3, 1, SIZE, SIZE)
    assert torch.allclose(out["opacity"], torch.ones_like(out["opacity"]), atol=1e-4)
    if shading == "albedo":
        assert torch.allclose(out["image"], torch.ones_like(out["image"]), atol=1e-4)
    else:  # constant density: no gradient, normals are 0, shading is the ambient term only
        assert torch.isfinite(out["image"]).all()


def test_empty_field_is_transparent_and_shows_the_background():
    field = ConstantField(sigma=0.0)
    cam = N.sample_cameras(4, field.config, torch.Generator().manual_seed(0))
    out = N.render(field, cam, SIZE, SIZE)
    assert torch.all(out["opacity"] == 0)
    background = torch.tensor([0.2, 0.4, 0.6]).view(1, 3, 1, 1).expand_as(out["image"])
    assert torch.allclose(out["image"], background)
    assert torch.all(out["depth"] == 0)


def test_rays_that_miss_the_ball_see_background_only():
    field = ConstantField(sigma=1e4)
    far_away = N.Camera(torch.tensor([5.0]), torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([70.0]))
    out = N.render(field, far_away, SIZE, SIZE)
    assert out["opacity"][0, 0, 0, 0] == 0  # the corner ray passes beside the ball
    assert out["opacity"][0, 0, SIZE // 2, SIZE // 2] > 0.999  # the centre ray goes through it


def test_camera_sampler_ranges_and_geometry():
    cfg = N.NeRFConfig()
    cam = N.sample_cameras(2000, cfg, torch.Generator().manual_seed(0))
    for values, (low, high) in [(cam.radius, cfg.radius_range), (cam.elevation, cfg.elevation_range),
                                (cam.azimuth, cfg.azimuth_range), (cam.fov, cfg.fov_range)]:
        assert values.min() >= low and values.max() <= high
        assert values.max() - values.min() > 0.9 * (high - low)  # spread over the whole range
    assert torch.allclose(cam.position.norm(dim=-1), cam.radius, atol=1e-5)
    # c2w is a rotation, and the camera looks at the origin (-z axis towards it)
    eye = torch.eye(3).expand(len(cam), 3, 3)
    assert torch.allclose(cam.c2w.transpose(1, 2) @ cam.c2w, eye, atol=1e-5)
    forward = -cam.c2w[..., 2]
    assert torch.allclose(forward, -cam.position / cam.radius[:, None], atol=1e-5)
    # straight down (elevation 90) is well defined too
    top = N.Camera(torch.tensor([1.2]), torch.tensor([90.0]), torch.tensor([30.0]), torch.tensor([50.0]))
    assert torch.isfinite(top.c2w).all()
    assert torch.allclose(top.c2w[0].T @ top.c2w[0], torch.eye(3), atol=1e-5)


def test_same_generator_same_cameras_and_samples():
    cfg = N.NeRFConfig()
    a = N.sample_cameras(5, cfg, torch.Generator().manual_seed(3))
    b = N.sample_cameras(5, cfg, torch.Generator().manual_seed(3))
    assert torch.equal(a.azimuth, b.azimuth) and torch.equal(a.fov, b.fov)
    torch.manual_seed(0)
    model = N.NeRF(N.NeRFConfig(grid_levels=4, grid_max_res=32, num_samples=8))
    r1 = N.render(model, a, 8, 8, generator=torch.Generator().manual_seed(5))["image"]
    r2 = N.render(model, a, 8, 8, generator=torch.Generator().manual_seed(5))["image"]
    assert torch.equal(r1, r2)


@pytest.mark.parametrize("azimuth, elevation, view", [
    (0, 0, "front"), (44, 10, "front"), (-44, 30, "front"), (90, 0, "side"), (-90, 20, "side"),
    (60, 0, "side"), (180, 0, "back"), (-180, 0, "back"), (150, 10, "back"), (-140, 0, "back"),
    (0, 75, "overhead"), (180, 60, "overhead"), (370, 0, "front"), (-270, 0, "side"),
])
def test_view_prompt_mapping(azimuth, elevation, view):
    assert N.view_name(azimuth, elevation, N.NeRFConfig()) == view
    assert N.view_prompt("a frog", view) == f"a frog, {view} view"


def test_no_overhead_when_disabled():
    assert N.view_name(0, 89, N.NeRFConfig(overhead_elevation=None)) == "front"


def test_blob_makes_the_initial_field_a_ball():
    torch.manual_seed(0)
    model = N.NeRF(N.NeRFConfig(grid_levels=4, grid_max_res=32))
    centre, edge = model.density(torch.zeros(1, 3)), model.density(torch.tensor([[0.9, 0.0, 0.0]]))
    assert centre > 5 and edge < 0.5


def test_regularisers_have_finite_gradients():
    torch.manual_seed(0)
    model = N.NeRF(N.NeRFConfig(grid_levels=4, grid_max_res=32, num_samples=16))
    cam = N.sample_cameras(2, model.config, torch.Generator().manual_seed(0))
    out = N.render(model, cam, 12, 12, shading="lambertian", generator=torch.Generator().manual_seed(0))
    assert {"image", "opacity", "depth", "normal", "orientation"} <= out.keys()
    loss = N.orientation_loss(out) + N.opacity_entropy(out["opacity"]) + N.opacity_sparsity(out["opacity"])
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    # the entropy is finite at exactly 0 and 1, and largest at 1/2
    o = torch.tensor([0.0, 0.5, 1.0], requires_grad=True)
    N.opacity_entropy(o).backward()
    assert torch.isfinite(o.grad).all()
    assert N.opacity_entropy(torch.tensor([0.5])) > N.opacity_entropy(torch.tensor([0.99]))


def level_by_level(grid, x):
    """The hash encoding written the plain way, one level and one corner at a time."""
    features = []
    for level, res in enumerate(grid.resolutions):
        table = grid.level_table(level)
        pos = x * res
        cell = pos.floor().long().clamp(max=res - 1)
        frac = pos - cell
        mixed = 0
        for corner in range(8):
            offset = torch.tensor([corner >> 2 & 1, corner >> 1 & 1, corner & 1])
            c = cell + offset
            if (res + 1) ** 3 <= grid.table_size:
                index = c[:, 0] + (res + 1) * (c[:, 1] + (res + 1) * c[:, 2])
            else:
                index = ((c[:, 0] * 1) ^ (c[:, 1] * 2654435761) ^ (c[:, 2] * 805459861)) % grid.table_size
            weight = torch.where(offset.bool(), frac, 1 - frac).prod(-1)
            mixed = mixed + weight[:, None] * table[index]
        features.append(mixed)
    return torch.cat(features, dim=-1)


def test_hash_grid_matches_the_level_by_level_definition():
    torch.manual_seed(0)
    grid = N.HashGrid(levels=4, features=2, log2_size=10, base_res=4, max_res=32)
    assert not grid.hashed[0] and grid.hashed[-1], "the test needs dense and hashed levels"
    with torch.no_grad():
        grid.table.uniform_(-1, 1)
    x = torch.rand(200, 3)
    x[:4] = torch.tensor([[0.0, 0, 0], [1, 1, 1], [1, 0, 0.5], [0.25, 0.5, 0.75]])  # edges, nodes
    torch.testing.assert_close(grid(x), level_by_level(grid, x), msg="vectorised != per level")


def test_hash_grid_is_continuous_and_trains():
    grid = N.HashGrid(levels=3, features=2, log2_size=10, base_res=4, max_res=32)
    x = torch.rand(100, 3)
    f = grid(x)
    assert f.shape == (100, 6)
    f.sum().backward()
    assert torch.isfinite(grid.table.grad).all() and grid.table.grad.abs().sum() > 0
    # continuity: nearby points get nearby features
    assert (grid(x + 1e-4) - f).abs().max() < 1e-3


class Ball(ConstantField):
    """Dense inside a ball of radius 0.5 (a smooth edge), empty outside."""

    def __init__(self):
        super().__init__(sigma=0.0)

    def density(self, x):
        return 200 * torch.sigmoid((0.5 - x.norm(dim=-1)) / 0.02)


def test_normals_of_a_ball_point_out_of_it_and_face_the_camera():
    ball = Ball()
    front = N.Camera(torch.tensor([1.5]), torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([40.0]))
    out = N.render(ball, front, SIZE, SIZE, shading="normal", perturb=False)
    centre = out["normal"][0, :, SIZE // 2, SIZE // 2]
    assert torch.allclose(centre, torch.tensor([0.0, 0.0, 1.0]), atol=0.1), centre  # towards +z
    # every pixel that sees the ball: its normal is the outward direction of the surface point
    # it sees, so it faces the camera; the orientation penalty is then ~0
    seen = out["opacity"][0, 0] > 0.99
    assert seen.sum() > 20
    assert (out["normal"][0, 2][seen] > 0.2).all()
    assert out["orientation"] < 1e-4
    # and Lambertian shading with the light at the camera is brightest in the middle
    lit = N.render(ball, front, SIZE, SIZE, shading="textureless", perturb=False,
                   light_position=front.position)["image"][0, 0]
    assert lit[SIZE // 2, SIZE // 2] > lit[seen].min() + 0.1


@pytest.mark.parametrize("shading", ["albedo", "textureless"])
def test_render_in_chunks_matches_one_render(shading):
    torch.manual_seed(0)
    model = N.NeRF(N.NeRFConfig(grid_levels=4, grid_max_res=32, num_samples=8))
    cam = inside_camera(2)
    with torch.no_grad():
        whole = N.render(model, cam, 12, 12, shading=shading, perturb=False,
                         light_position=cam.position)
    pieces = N.render_in_chunks(model, cam, 12, 12, shading=shading, max_samples=5 * 8)  # 5 rays
    for name in ("image", "opacity", "depth") + (("normal",) if shading != "albedo" else ()):
        torch.testing.assert_close(pieces[name], whole[name], msg=name)
