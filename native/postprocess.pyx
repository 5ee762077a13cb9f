"""Postprocessing kernels: softmax + top-k, class-aware greedy NMS, SSD anchor decoding, detector score and box decoding.

Twins in :mod:`edge.kernels.reference` (same signatures, same errors, same tie-breaking).
"""

from libc.math cimport exp, isnan, NAN

from edge import _kernel_checks as _checks


def softmax_topk(logits, probs, top_idx, top_val):
    """See :func:`edge.kernels.reference.softmax_topk`."""
    logits, probs, top_idx, top_val = _checks.softmax_topk(logits, probs, top_idx, top_val)
    _softmax_topk(logits, probs, top_idx, top_val)


cdef inline bint _ranks_before(double a, Py_ssize_t ia, double b, Py_ssize_t ib) noexcept nogil:
    """Descending value, NaN last, ties to the lower index."""
    if isnan(a):
        return isnan(b) and ia < ib
    if isnan(b):
        return True
    return a > b or (a == b and ia < ib)


cdef void _softmax_topk(const float[:, :] logits, float[:, :] probs, long long[:, :] top_idx,
                        float[:, :] top_val) noexcept nogil:
    cdef Py_ssize_t n = logits.shape[0], K = logits.shape[1], k = top_idx.shape[1]
    cdef Py_ssize_t row, i, j, filled
    cdef double m, s, v
    for row in range(n):
        m = logits[row, 0]
        for i in range(1, K):
            v = logits[row, i]
            if v > m or isnan(v):
                m = v
                if isnan(v):
                    break
        s = 0.0
        for i in range(K):  # exp once per class: keep it in probs, normalize below
            v = exp(logits[row, i] - m)
            s += v
            probs[row, i] = <float>v
        for i in range(K):
            probs[row, i] = <float>(probs[row, i] / s)
        # top-k by insertion into the k best seen so far, kept sorted
        filled = 0
        for i in range(K):
            v = logits[row, i]
            if filled == k and not _ranks_before(v, i, logits[row, top_idx[row, k - 1]], top_idx[row, k - 1]):
                continue
            j = filled if filled < k else k - 1
            while j > 0 and _ranks_before(v, i, logits[row, top_idx[row, j - 1]], top_idx[row, j - 1]):
                top_idx[row, j] = top_idx[row, j - 1]
                j -= 1
            top_idx[row, j] = i
            if filled < k:
                filled += 1
        for j in range(k):
            top_val[row, j] = probs[row, top_idx[row, j]]


def nms(boxes, scores, classes, iou_threshold, score_threshold, keep, scratch):
    """See :func:`edge.kernels.reference.nms`."""
    boxes, scores, classes, iou, score_thr, keep, scratch = _checks.nms(
        boxes, scores, classes, iou_threshold, score_threshold, keep, scratch
    )
    return _nms(boxes, scores, classes, iou, score_thr, keep, scratch)


cdef inline bint _score_before(const float[:] scores, long long a, long long b) noexcept nogil:
    return scores[a] > scores[b] or (scores[a] == scores[b] and a < b)


cdef void _sift_down(long long[:] heap, const float[:] scores, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    """Min-heap on rank order (the worst-ranked candidate at the root), so heapsort leaves the best first."""
    cdef Py_ssize_t root = start, child
    cdef long long tmp
    while 2 * root + 1 < end:
        child = 2 * root + 1
        if child + 1 < end and _score_before(scores, heap[child], heap[child + 1]):
            child += 1
        if _score_before(scores, heap[root], heap[child]):
            tmp = heap[root]
            heap[root] = heap[child]
            heap[child] = tmp
            root = child
        else:
            return


cdef double _iou(const float[:, :] b, long long i, long long j) noexcept nogil:
    cdef double ix1 = max(<double>b[i, 0], <double>b[j, 0])
    cdef double iy1 = max(<double>b[i, 1], <double>b[j, 1])
    cdef double ix2 = min(<double>b[i, 2], <double>b[j, 2])
    cdef double iy2 = min(<double>b[i, 3], <double>b[j, 3])
    cdef double inter = max(ix2 - ix1, 0.0) * max(iy2 - iy1, 0.0)
    cdef double area_i = max(<double>b[i, 2] - <double>b[i, 0], 0.0) * max(<double>b[i, 3] - <double>b[i, 1], 0.0)
    cdef double area_j = max(<double>b[j, 2] - <double>b[j, 0], 0.0) * max(<double>b[j, 3] - <double>b[j, 1], 0.0)
    cdef double union = area_i + area_j - inter
    return inter / union if union > 0.0 else 0.0


def _nms(const float[:, :] boxes, const float[:] scores, const int[:] classes, double iou_threshold,
         double score_threshold, long long[:] keep, long long[:] scratch):
    cdef Py_ssize_t n = boxes.shape[0], max_keep = keep.shape[0], m = 0, i, j, count = 0
    cdef long long cand, tmp
    cdef bint suppressed
    with nogil:
        for i in range(max_keep):
            keep[i] = -1
        for i in range(n):
            if scores[i] > score_threshold:
                scratch[m] = i
                m += 1
        # heapsort scratch[:m] into rank order (best first)
        i = m // 2
        while i > 0:
            i -= 1
            _sift_down(scratch, scores, i, m)
        i = m
        while i > 1:
            i -= 1
            tmp = scratch[0]
            scratch[0] = scratch[i]
            scratch[i] = tmp
            _sift_down(scratch, scores, 0, i)
        for i in range(m):
            if count == max_keep:
                break
            cand = scratch[i]
            suppressed = False
            for j in range(count):
                if classes[keep[j]] == classes[cand] and _iou(boxes, cand, keep[j]) > iou_threshold:
                    suppressed = True
                    break
            if not suppressed:
                keep[count] = cand
                count += 1
    return count


def decode_anchors(encodings, anchors, scales, out, exp_size=True):
    """See :func:`edge.kernels.reference.decode_anchors`."""
    encodings, anchors, (ys, xs, hs, ws), out = _checks.decode_anchors(encodings, anchors, scales, out)
    _decode(encodings, anchors, ys, xs, hs, ws, bool(exp_size), out)


cdef void _decode(const float[:, :] t, const float[:, :] a, double ys, double xs, double hs, double ws,
                  bint exp_size, float[:, :] out) noexcept nogil:
    cdef Py_ssize_t i
    cdef double yc, xc, h, w
    for i in range(t.shape[0]):
        yc = t[i, 0] / ys * a[i, 2] + a[i, 0]
        xc = t[i, 1] / xs * a[i, 3] + a[i, 1]
        if exp_size:
            h = exp(t[i, 2] / hs) * a[i, 2]
            w = exp(t[i, 3] / ws) * a[i, 3]
        else:
            h = t[i, 2] / hs * a[i, 2]
            w = t[i, 3] / ws * a[i, 3]
        out[i, 0] = <float>(yc - h / 2.0)
        out[i, 1] = <float>(xc - w / 2.0)
        out[i, 2] = <float>(yc + h / 2.0)
        out[i, 3] = <float>(xc + w / 2.0)


cdef double SCORE_CLIP = 100.0  # logits clipped to ±100 before the sigmoid (MediaPipe score_clipping_thresh)


def best_class(logits, sigmoid, scores, classes):
    """See :func:`edge.kernels.reference.best_class`."""
    logits, sigmoid, scores, classes = _checks.best_class(logits, sigmoid, scores, classes)
    return _best_class(logits, 0, sigmoid, scores, classes)


cdef Py_ssize_t _best_class(const float[:, :] v, Py_ssize_t col0, bint sigmoid, float[:] scores,
                            int[:] classes) noexcept nogil:
    """Columns ``col0:`` of each row of ``v``: best class and score; returns the count of rows holding a NaN."""
    cdef Py_ssize_t n = v.shape[0], k = v.shape[1], row, i, idx, bad = 0
    cdef double best, x
    for row in range(n):
        idx = col0
        best = v[row, col0]
        if not isnan(best):
            for i in range(col0 + 1, k):
                x = v[row, i]
                if isnan(x):
                    idx = i
                    best = NAN
                    break
                if x > best:
                    best = x
                    idx = i
        if isnan(best):
            bad += 1
        elif sigmoid:
            best = 1.0 / (1.0 + exp(-min(max(best, -SCORE_CLIP), SCORE_CLIP)))
        classes[row] = <int>(idx - col0)
        scores[row] = <float>best
    return bad


def decode_yolo(preds, boxes, scores, classes):
    """See :func:`edge.kernels.reference.decode_yolo`."""
    preds, boxes, scores, classes = _checks.decode_yolo(preds, boxes, scores, classes)
    return _decode_yolo(preds, boxes, scores, classes)


cdef Py_ssize_t _decode_yolo(const float[:, :] p, float[:, :] boxes, float[:] scores, int[:] classes) noexcept nogil:
    cdef Py_ssize_t i
    cdef double cx, cy, w, h
    for i in range(p.shape[0]):
        cx = p[i, 0]
        cy = p[i, 1]
        w = p[i, 2]
        h = p[i, 3]
        boxes[i, 0] = <float>(cx - w / 2.0)
        boxes[i, 1] = <float>(cy - h / 2.0)
        boxes[i, 2] = <float>(cx + w / 2.0)
        boxes[i, 3] = <float>(cy + h / 2.0)
    return _best_class(p, 4, False, scores, classes)
