'''hutch result formatters: E2B's e2b/chart and e2b/data representations.

A matplotlib Figure also gets a structured description of its chart
(e2b/chart), a pandas DataFrame its columns as lists (e2b/data).  The
formatters are registered by type name, so installing them imports
nothing; a representation that cannot be extracted is left out, and the
other representations (text, html, png) are never affected.

Each Python kernel runs this source once at start: the zygote in the shell
it prepares, a kernel started from its kernelspec as its start-up code.
'''


def _install(shell):
    import math
    import re

    from IPython.core.formatters import BaseFormatter

    def number(v):
        '''A JSON number (or None for NaN and infinities), a string for
        dates, the string form for anything else.'''
        if hasattr(v, 'item') and not isinstance(v, (str, bytes)):
            if 'datetime64' in str(getattr(v, 'dtype', '')):
                return str(v.astype('datetime64[s]'))
            v = v.item()
        if isinstance(v, bool):
            return float(v)
        if isinstance(v, (int, float)):
            f = float(v)
            return f if math.isfinite(f) else None
        if hasattr(v, 'isoformat'):
            return v.isoformat()
        return str(v)

    def numbers(values):
        '''number() of each value, fast for numeric arrays.'''
        import numpy

        array = numpy.asarray(values)
        if array.dtype.kind not in 'biuf':
            return [number(v) for v in values]
        return [v if math.isfinite(v) else None for v in array.astype(float).tolist()]

    def points(xs, ys):
        return [list(p) for p in zip(numbers(xs), numbers(ys))]

    def tidy(v):
        '''A derived float without its rounding noise.'''
        return float('%.12g' % v)

    def text(v):
        return v if v else None

    def converter(axis):
        get = getattr(axis, 'get_converter', None)
        return get() if get else axis.converter

    def scale(ax, axis, name):
        module = type(converter(axis)).__module__ or ''
        if module == 'matplotlib.dates':
            return 'datetime'
        if module == 'matplotlib.category':
            return 'categorical'
        return getattr(ax, 'get_%sscale' % name)()

    def ticks(axis, kind):
        values = list(axis.get_ticklocs())
        if kind == 'datetime':
            from matplotlib.dates import num2date

            return [num2date(v).isoformat() for v in values]
        return [number(v) for v in values]

    def labels_2d(ax, chart):
        for name in ('x', 'y'):
            label = text(getattr(ax, 'get_%slabel' % name)())
            unit = re.search(r'\s\(([^()]*)\)|\[([^\[\]]*)\]', label or '')
            chart[name + '_label'] = label
            chart[name + '_unit'] = (unit.group(1) or unit.group(2)) if unit else None
        return chart

    def swap_axes(chart):
        for a, b in (('x_label', 'y_label'), ('x_unit', 'y_unit')):
            chart[a], chart[b] = chart[b], chart[a]

    def unnamed(label, kind, i):
        return '%s %d' % (kind, i) if not label or label.startswith('_') else label

    def point_chart(ax, kind, elements):
        chart = labels_2d(ax, {'type': kind, 'title': text(ax.get_title())})
        for name, axis in (('x', ax.xaxis), ('y', ax.yaxis)):
            chart[name + '_scale'] = scale(ax, axis, name)
            chart[name + '_ticks'] = ticks(axis, chart[name + '_scale'])
            chart[name + '_tick_labels'] = [t.get_text() for t in axis.get_ticklabels()]
        chart['elements'] = elements
        return chart

    def line_chart(ax):
        elements = []
        for i, line in enumerate(ax.lines):
            label = unnamed(line.get_label(), 'Line', i)
            xy = points(line.get_xdata(), line.get_ydata())
            elements.append({'label': label, 'points': xy})
        return point_chart(ax, 'line', elements)

    def scatter_chart(ax):
        elements = []
        for i, c in enumerate(ax.collections):
            offsets = c.get_offsets()
            label = unnamed(c.get_label(), 'Series', i)
            xy = points(offsets[:, 0], offsets[:, 1]) if len(offsets) else []
            elements.append({'label': label, 'points': xy})
        return point_chart(ax, 'scatter', elements)

    def tick_label(axis, at):
        for loc, label in zip(axis.get_ticklocs(), axis.get_ticklabels()):
            if abs(loc - at) < 1e-9:
                return label.get_text()
        return '%g' % at

    def bar_chart(ax):
        chart = labels_2d(ax, {'type': 'bar', 'title': text(ax.get_title())})
        horizontal = False
        elements = []
        for i, container in enumerate(ax.containers):
            group = unnamed(container.get_label(), 'Group', i)
            horizontal = getattr(container, 'orientation', None) == 'horizontal'
            for bar in container.patches:
                if horizontal:
                    label = tick_label(ax.yaxis, bar.get_y() + bar.get_height() / 2)
                    value = bar.get_width()
                else:
                    label = tick_label(ax.xaxis, bar.get_x() + bar.get_width() / 2)
                    value = bar.get_height()
                bar = {'label': label, 'group': group, 'value': number(value)}
                elements.append(bar)
        if horizontal:
            swap_axes(chart)  # y_label names the values, as for upright bars
        chart['elements'] = elements
        return chart

    def pie_chart(ax):
        elements = []
        for w in ax.patches:
            angle = round(abs(w.theta2 - w.theta1), 4)
            radius = number(w.r)
            elements.append({'label': w.get_label(), 'angle': angle, 'radius': radius})
        return {'type': 'pie', 'title': text(ax.get_title()), 'elements': elements}

    def rectangle(xs, ys):
        '''The bounds of an axis-aligned rectangle through these vertices.'''
        if len(xs) < 4 or len(set(xs)) != 2 or len(set(ys)) != 2:
            return None
        return min(xs), max(xs), min(ys), max(ys)

    def boxes_of(ax):
        boxes, others = [], []
        for artist in list(ax.patches) + list(ax.lines):
            if hasattr(artist, 'get_xdata'):
                rect = rectangle(list(artist.get_xdata()), list(artist.get_ydata()))
            else:
                path = artist.get_path()
                v = path.vertices
                if path.codes is not None:
                    v = v[path.codes != path.CLOSEPOLY]
                rect = rectangle([tidy(x) for x in v[:, 0]], [tidy(y) for y in v[:, 1]])
            (boxes if rect else others).append(rect or artist)
        return boxes, others

    def segments(others, flip):
        out = []
        for line in others:
            xs, ys = list(line.get_xdata()), list(line.get_ydata())
            if flip:
                xs, ys = ys, xs
            out.append((line, [float(x) for x in xs], [float(y) for y in ys]))
        return out

    def one_box(box, segs, flip):
        x0, x1, y0, y1 = box
        if flip:
            x0, x1, y0, y1 = y0, y1, x0, x1
        mid = (x0 + x1) / 2
        stats = {'first_quartile': tidy(y0), 'third_quartile': tidy(y1), 'outliers': []}
        for line, xs, ys in segs:
            centred = bool(xs) and all(abs(x - mid) < 1e-9 for x in xs)
            if len(xs) == 2 and centred:  # a whisker
                if y0 in ys and min(ys) < y0:
                    stats['min'] = tidy(min(ys))
                elif y1 in ys and max(ys) > y1:
                    stats['max'] = tidy(max(ys))
            elif len(xs) == 2 and ys[0] == ys[1] and x0 <= min(xs) <= max(xs) <= x1:
                if y0 <= ys[0] <= y1:
                    stats['median'] = tidy(ys[0])
            elif centred and line.get_linestyle() in ('None', '', ' '):  # fliers
                stats['outliers'] += [tidy(y) for y in ys]
        stats.setdefault('min', stats['first_quartile'])
        stats.setdefault('max', stats['third_quartile'])
        return mid, stats

    def box_chart(ax, boxes, others):
        for flip in (False, True):
            found = [one_box(b, segments(others, flip), flip) for b in boxes]
            if all('median' in stats for _, stats in found):
                break
        else:
            return None
        chart = {'type': 'box_and_whisker', 'title': text(ax.get_title())}
        labels_2d(ax, chart)
        axis = ax.yaxis if flip else ax.xaxis
        keys = ('min', 'first_quartile', 'median', 'third_quartile', 'max', 'outliers')
        chart['elements'] = [
            dict(label=tick_label(axis, mid), **{k: stats[k] for k in keys})
            for mid, stats in found
        ]
        if flip:
            swap_axes(chart)  # y_label names the values, as for upright boxes
        return chart

    def of_kind(artists, names):
        return all(type(a).__name__ in names for a in artists)

    def axes_chart(ax):
        '''What the artists added to AX (not its axes, texts or legend) draw.'''
        lines, patches = list(ax.lines), list(ax.patches)
        collections = list(ax.collections)
        chart = None
        if list(ax.images) or list(ax.tables) or list(ax.artists):
            pass
        elif collections:
            if not lines and not patches and of_kind(collections, ('PathCollection',)):
                chart = scatter_chart(ax)
        elif lines and not patches:
            boxes, others = boxes_of(ax)
            chart = (box_chart(ax, boxes, others) if boxes else None) or line_chart(ax)
        elif not lines and of_kind(patches, ('Wedge',)):
            chart = pie_chart(ax)
        elif of_kind(patches, ('PathPatch',)):
            boxes, others = boxes_of(ax)
            if all(hasattr(o, 'get_xdata') for o in others):  # only lines
                chart = box_chart(ax, boxes, others)
        elif not lines and ax.containers and of_kind(patches, ('Rectangle',)):
            chart = bar_chart(ax)
        unknown = {'type': 'unknown', 'title': text(ax.get_title()), 'elements': []}
        return chart or unknown

    def figure_chart(fig):
        axes = fig.get_axes()
        suptitle = getattr(fig, '_suptitle', None)
        title = text(suptitle.get_text()) if suptitle is not None else None
        if not axes:
            return None
        if len(axes) == 1:
            chart = axes_chart(axes[0])
            chart['title'] = chart['title'] or title
            return chart
        elements = [axes_chart(ax) for ax in axes]
        return {'type': 'superchart', 'title': title, 'elements': elements}

    def frame_data(frame):
        import json

        as_json = frame.to_json(orient='split', date_format='iso', default_handler=str)
        split = json.loads(as_json)
        columns = [str(c) for c in split['columns']]
        return {c: [row[i] for row in split['data']] for i, c in enumerate(columns)}

    class ResultFormatter(BaseFormatter):
        '''Formats instances of one class, known by name (so that nothing
        is imported for it), with a function: no entry when that fails.
        The class is not in the formatter's registry, which the inline
        backend clears of matplotlib's Figure when it starts.'''

        _return_type = dict

        def __init__(self, cls_name, extract, **kwargs):
            super().__init__(**kwargs)
            self.cls_name, self.extract = cls_name, extract

        def __call__(self, obj):
            if not self.enabled:
                return None
            for cls in type(obj).__mro__:
                if (cls.__module__, cls.__name__) == self.cls_name:
                    try:
                        return self.extract(obj) or None
                    except Exception:
                        return None
            return None

    display = shell.display_formatter
    for mime, cls_name, extract in (
        ('e2b/chart', ('matplotlib.figure', 'Figure'), figure_chart),
        ('e2b/data', ('pandas.core.frame', 'DataFrame'), frame_data),
    ):
        formatter = ResultFormatter(cls_name, extract, parent=display, format_type=mime)
        display.formatters[mime] = formatter
        if mime not in display.active_types:
            display.active_types = display.active_types + [mime]


_install(get_ipython())  # noqa: F821 (a builtin in the shell)
