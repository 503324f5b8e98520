#!/usr/bin/env python3
"""The baseline a PyTorch user would write for the one-shot model of docs/model.md: every path is computed for the whole batch
and its output multiplied by the per-ghost-batch mask; BatchNorm statistics per ghost batch (F.batch_norm per chunk).

  python3 bench/pytorch_eager.py --filters 16 --batch 64 --ghost 32 --steps 10 --rate 0.1 --threads 2 --score-images 1000
  python3 bench/pytorch_eager.py --device cuda --bn plain --batch 1024 --score-images 5000 --score-batch 1000 [--bf16]

Prints one JSON line: parameters, training images/s at drop rate 0 and at the schedule's end rates, scoring images/s.
On CUDA: cudnn.benchmark, masks drawn on the device, every timing ends with torch.cuda.synchronize(); `--bn plain`
(BatchNorm over the whole batch, the faster program a PyTorch user would write first) is the stronger baseline.
"""
import argparse, json, math, statistics, time

import torch
import torch.nn as nn
import torch.nn.functional as F

OPS = 7


PLAIN_BN = False  # --bn plain: statistics over the whole batch


def ghost_bn(x, bn, g):
    if PLAIN_BN:
        return F.batch_norm(x, None, None, bn.weight, bn.bias, True, 0.0, 1e-5)
    return torch.cat([F.batch_norm(c, None, None, bn.weight, bn.bias, True, 0.0, 1e-5) for c in x.split(g)], 0)


class BRC(nn.Module):
    def __init__(s, cin, cout, k, stride=1, pad=None, groups=1):
        super().__init__()
        s.bn = nn.BatchNorm2d(cin)
        s.conv = nn.Conv2d(cin, cout, k, stride, k // 2 if pad is None else pad, groups=groups, bias=False)

    def forward(s, x, g):
        return s.conv(F.relu(ghost_bn(x, s.bn, g)))


class Sep(nn.Module):
    def __init__(s, c, k):
        super().__init__()
        s.l1, s.p1 = BRC(c, c, k, groups=c), nn.Conv2d(c, c, 1, bias=False)
        s.l2, s.p2 = BRC(c, c, k, groups=c), nn.Conv2d(c, c, 1, bias=False)

    def forward(s, x, g):
        return s.p2(s.l2(s.p1(s.l1(x, g)), g))


class Block(nn.Module):
    def __init__(s, c, i):
        super().__init__()
        s.n = 2 + i
        s.bn = nn.BatchNorm2d(s.n * c)
        s.conv = nn.Conv2d(s.n * c, c, 1, bias=False)
        s.sep = nn.ModuleList([Sep(c, k) for k in (3, 5, 7)])
        s.c17, s.c71 = BRC(c, c, (1, 7), pad=(0, 3)), BRC(c, c, (7, 1), pad=(3, 0))

    def forward(s, cands, min_, mop, g):
        # min_: [G, n] input masks, mop: [G, 7] op masks, expanded per example.
        x = F.relu(ghost_bn(torch.cat(cands, 1), s.bn, g))
        c = cands[0].shape[1]
        m = min_.repeat_interleave(g, 0)[:x.shape[0]].repeat_interleave(c, 1)[:, :, None, None]  # a tail: a shorter ghost batch
        h = s.conv(x * m)
        outs = [h, s.sep[0](h, g), s.sep[1](h, g), s.sep[2](h, g), s.c71(s.c17(h, g), g),
                F.max_pool2d(h, 3, 1, 1), F.avg_pool2d(h, 3, 1, 1, count_include_pad=False)]
        mo = mop.repeat_interleave(g, 0)[:h.shape[0]]
        return sum(o * mo[:, j, None, None, None] for j, o in enumerate(outs))


class Cell(nn.Module):
    def __init__(s, c, blocks=4):
        super().__init__()
        s.blocks = nn.ModuleList([Block(c, i) for i in range(blocks)])
        s.out = BRC(blocks * c, c, 1)

    def forward(s, s0, s1, masks, g):
        cands, outs = [s0, s1], []
        for i, b in enumerate(s.blocks):
            o = b(cands, masks[i][0], masks[i][1], g)
            cands.append(o)
            outs.append(o)
        return s.out(torch.cat(outs, 1), g)


class OneShot(nn.Module):
    def __init__(s, cin=3, f=16, classes=10, stacks=3, cells=2):
        super().__init__()
        s.stem = nn.Conv2d(cin, f, 3, 1, 1, bias=False)
        s.red, s.cells, c = nn.ModuleList(), nn.ModuleList(), f
        s.plan = []
        for st in range(stacks):
            if st > 0:
                s.red.append(nn.ModuleList([BRC(c, 2 * c, 3, 2), BRC(c, 2 * c, 3, 2)]))
                c *= 2
            for _ in range(cells):
                s.cells.append(Cell(c))
            s.plan.append(cells)
        s.bn, s.fc = nn.BatchNorm2d(c), nn.Linear(c, classes)

    def forward(s, x, masks, g):
        x = s.stem(x)
        s0 = s1 = x
        k = 0
        for st, n in enumerate(s.plan):
            if st > 0:
                s0, s1 = s.red[st - 1][0](s0, g), s.red[st - 1][1](s1, g)
            for _ in range(n):
                s0, s1 = s1, s.cells[k](s0, s1, masks, g)
                k += 1
        return s.fc(F.relu(ghost_bn(s1, s.bn, g)).mean((2, 3)))


def draw_masks(G, p_in, p_op, device, blocks=4):
    return [((torch.rand(G, 2 + i, device=device) >= p_in[i]).float(), (torch.rand(G, OPS, device=device) >= p_op).float())
            for i in range(blocks)]


def main():
    a = argparse.ArgumentParser()
    a.add_argument('--filters', type=int, default=16)
    a.add_argument('--batch', type=int, default=64)
    a.add_argument('--ghost', type=int, default=32)
    a.add_argument('--steps', type=int, default=10)
    a.add_argument('--rate', type=float, default=0.1)
    a.add_argument('--threads', type=int, default=2)
    a.add_argument('--score-images', type=int, default=1000)
    a.add_argument('--channels-last', action='store_true')
    a.add_argument('--device', default='cpu')
    a.add_argument('--bn', choices=['ghost', 'plain'], default='ghost')
    a.add_argument('--bf16', action='store_true', help='bf16 autocast for forward passes')
    a.add_argument('--score-batch', type=int, default=256)
    a.add_argument('--reps', type=int, default=3, help='repeats; the first is a warm-up, the median of the others is reported')
    o = a.parse_args()
    global PLAIN_BN
    PLAIN_BN = o.bn == 'plain'
    torch.set_num_threads(o.threads)
    torch.manual_seed(0)
    dev = torch.device(o.device)
    cuda = dev.type == 'cuda'
    if cuda:
        torch.backends.cudnn.benchmark = True
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    autocast = (lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if o.bf16 else (lambda: torch.autocast(dev.type, enabled=False))
    net = OneShot(f=o.filters).to(dev)
    fmt = torch.channels_last if o.channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)
    G = o.batch // o.ghost
    x = torch.randn(o.batch, 3, 32, 32, device=dev).to(memory_format=fmt)
    y = torch.randint(0, 10, (o.batch,), device=dev)
    out = {'impl': 'pytorch-eager', 'torch': torch.__version__, 'filters': o.filters, 'batch': o.batch, 'ghost': o.ghost,
           'threads': o.threads, 'device': o.device, 'bn': o.bn, 'bf16': o.bf16,
           'params': sum(p.numel() for p in net.parameters())}
    for label, (p_in, p_op) in [('train_drop0', ([0.0] * 4, 0.0)),
                                (f'train_end_r{o.rate}', ([o.rate ** (1 / (2 + i)) for i in range(4)], o.rate ** (1 / OPS)))]:
        times = []
        for rep in range(o.reps):
            sync()
            t0 = time.perf_counter()
            for _ in range(o.steps):
                opt.zero_grad(set_to_none=True)
                with autocast():
                    loss = F.cross_entropy(net(x, draw_masks(G, p_in, p_op, dev), o.ghost), y)
                loss.backward()
                opt.step()
            sync()
            if rep:
                times.append(time.perf_counter() - t0)
        out[label] = round(o.steps * o.batch / statistics.median(times), 1)
    # Scoring one architecture: the same mask for every ghost batch, every path still computed.
    sb = o.score_batch
    xs = torch.randn(sb, 3, 32, 32, device=dev).to(memory_format=fmt)
    ys = torch.randint(0, 10, (sb,), device=dev)
    gs = math.ceil(sb / o.ghost)
    arch = [(torch.tensor([[1.0] + [0.0] * (1 + i)], device=dev).repeat(gs, 1),
             torch.tensor([[0, 1, 0, 0, 0, 1, 0]], dtype=torch.float, device=dev).repeat(gs, 1)) for i in range(4)]
    batches = math.ceil(o.score_images / sb)
    with torch.inference_mode(), autocast():
        net(xs, arch, o.ghost)
        times = []
        for rep in range(max(1, o.reps - 1)):
            sync()
            t0 = time.perf_counter()
            correct = torch.zeros((), device=dev)
            for _ in range(batches):
                correct += (net(xs, arch, o.ghost).argmax(1) == ys).sum()
            correct.item()  # the accuracy a user reads, once per pass
            times.append(time.perf_counter() - t0)
    out['score_images_per_s'] = round(batches * sb / statistics.median(times), 1)
    out['images_timed'] = {'train': o.steps * o.batch * (o.reps - 1), 'score': batches * sb}
    out['score_archs_per_s_5000'] = round(out['score_images_per_s'] / 5000, 4)
    print(json.dumps(out))


if __name__ == '__main__':
    main()
