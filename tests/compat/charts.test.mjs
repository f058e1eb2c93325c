// Structured results through the official @e2b/code-interpreter SDK: a
// matplotlib figure's `chart` (e2b/chart: line, bar, scatter, pie, box and
// whisker, several axes as a superchart, anything else as unknown) next to
// its png, and a pandas DataFrame's `data` (e2b/data).

import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { Sandbox } from '@e2b/code-interpreter'
import { useHutchd } from './helpers/hutchd.mjs'

const T = { timeout: 120_000 }

describe('charts and data', () => {
  const hutchd = useHutchd()
  let sbx
  before(async () => {
    sbx = hutchd.track(await Sandbox.create({ metadata: { suite: 'charts' } }))
    const ex = await sbx.runCode('import matplotlib.pyplot as plt\nimport pandas as pd')
    assert.equal(ex.error, undefined)
  }, { timeout: 60_000 })

  /** The only result of code, which must display one figure. */
  async function plot(code) {
    const ex = await sbx.runCode(code)
    assert.equal(ex.error, undefined, ex.error?.traceback)
    assert.equal(ex.results.length, 1, JSON.stringify(ex.results.map((r) => r.formats())))
    return ex.results[0]
  }

  it('a line plot: type line, title, axis labels and units, ticks, the points of each line', T, async () => {
    const result = await plot(`
plt.plot([1, 2, 3], [1, 4, 9], label='squares')
plt.plot([1, 2, 3], [2, 3, 4])
plt.title('Growth')
plt.xlabel('Time (s)')
plt.ylabel('Distance [m]')
plt.show()`)
    const chart = result.chart
    assert.equal(chart.type, 'line')
    assert.equal(chart.title, 'Growth')
    assert.equal(chart.x_label, 'Time (s)')
    assert.equal(chart.x_unit, 's')
    assert.equal(chart.y_label, 'Distance [m]')
    assert.equal(chart.y_unit, 'm')
    assert.equal(chart.x_scale, 'linear')
    assert.equal(chart.y_scale, 'linear')
    assert.ok(chart.x_ticks.length > 1 && chart.x_ticks.every((t) => typeof t === 'number'))
    assert.equal(chart.x_tick_labels.length, chart.x_ticks.length)
    assert.deepEqual(chart.elements, [
      { label: 'squares', points: [[1, 1], [2, 4], [3, 9]] },
      { label: 'Line 1', points: [[1, 2], [2, 3], [3, 4]] },
    ])
  })

  it('the figure keeps its png (and text) next to the chart', T, async () => {
    const result = await plot('plt.plot([0, 1], [1, 0])\nplt.show()')
    assert.deepEqual(result.formats(), ['png']) // the SDK lists neither text nor chart
    assert.equal(result.chart.type, 'line')
    assert.equal(typeof result.png, 'string')
    assert.deepEqual(Buffer.from(result.png, 'base64').subarray(1, 4).toString(), 'PNG')
    assert.match(result.text, /Figure/)
  })

  it('a bar chart: label, group and value per bar', T, async () => {
    const result = await plot(`
plt.bar(['apples', 'pears'], [3, 5], label='2023')
plt.bar(['apples', 'pears'], [1, 2], label='2024')
plt.ylabel('Sold')
plt.show()`)
    const chart = result.chart
    assert.equal(chart.type, 'bar')
    assert.equal(chart.y_label, 'Sold')
    assert.deepEqual(chart.elements, [
      { label: 'apples', group: '2023', value: 3 },
      { label: 'pears', group: '2023', value: 5 },
      { label: 'apples', group: '2024', value: 1 },
      { label: 'pears', group: '2024', value: 2 },
    ])
  })

  it('a scatter plot: the points of each series', T, async () => {
    const chart = (await plot(`
plt.scatter([1, 2, 3], [3, 1, 2], label='samples')
plt.title('Scatter')
plt.show()`)).chart
    assert.equal(chart.type, 'scatter')
    assert.equal(chart.title, 'Scatter')
    assert.deepEqual(chart.elements, [{ label: 'samples', points: [[1, 3], [2, 1], [3, 2]] }])
  })

  it('a pie chart: label, angle (degrees) and radius per wedge', T, async () => {
    const chart = (await plot(`
plt.pie([1, 1, 2], labels=['a', 'b', 'c'])
plt.title('Shares')
plt.show()`)).chart
    assert.equal(chart.type, 'pie')
    assert.equal(chart.title, 'Shares')
    assert.deepEqual(chart.elements, [
      { label: 'a', angle: 90, radius: 1 },
      { label: 'b', angle: 90, radius: 1 },
      { label: 'c', angle: 180, radius: 1 },
    ])
  })

  it('a box plot: the five numbers and the outliers of each box', T, async () => {
    const chart = (await plot(`
plt.boxplot([[1, 2, 3, 4, 5, 40], [2, 4, 6, 8, 10]], labels=['first', 'second'])
plt.ylabel('Value')
plt.show()`)).chart
    assert.equal(chart.type, 'box_and_whisker')
    assert.equal(chart.y_label, 'Value')
    assert.deepEqual(chart.elements, [
      { label: 'first', min: 1, first_quartile: 2.25, median: 3.5, third_quartile: 4.75, max: 5, outliers: [40] },
      { label: 'second', min: 2, first_quartile: 4, median: 6, third_quartile: 8, max: 10, outliers: [] },
    ])
  })

  it('two subplots: a superchart with the suptitle and a chart per axes', T, async () => {
    const chart = (await plot(`
fig, (left, right) = plt.subplots(1, 2)
left.plot([1, 2], [3, 4])
left.set_title('left')
right.bar(['x'], [7])
fig.suptitle('Both')
plt.show()`)).chart
    assert.equal(chart.type, 'superchart')
    assert.equal(chart.title, 'Both')
    assert.deepEqual(chart.elements.map((c) => [c.type, c.title]), [['line', 'left'], ['bar', null]])
    assert.deepEqual(chart.elements[1].elements, [{ label: 'x', group: 'Group 0', value: 7 }])
  })

  it('an image is an unknown chart with its title', T, async () => {
    const chart = (await plot("plt.imshow([[0, 1], [1, 0]])\nplt.title('Pixels')\nplt.show()")).chart
    assert.deepEqual(chart, { type: 'unknown', title: 'Pixels', elements: [] })
  })

  it('a DataFrame gives data: its columns as lists, next to html and text', T, async () => {
    const ex = await sbx.runCode("pd.DataFrame({'a': [1, 2], 'b': ['x', None], 'c': [0.5, float('nan')]})")
    assert.equal(ex.error, undefined)
    const result = ex.results[0]
    assert.equal(result.isMainResult, true)
    assert.deepEqual(result.data, { a: [1, 2], b: ['x', null], c: [0.5, null] })
    assert.ok(result.formats().includes('data'))
    assert.match(result.html, /<table/)
    assert.equal(result.chart, undefined)
  })

  it('a plain value has no chart and no data', T, async () => {
    const ex = await sbx.runCode('1 + 1')
    assert.equal(ex.text, '2')
    assert.equal(ex.results[0].chart, undefined)
    assert.equal(ex.results[0].data, undefined)
    assert.deepEqual(ex.results[0].formats(), [])
  })

  it('a figure the extraction cannot read still displays, without a chart', T, async () => {
    const result = await plot(`
import matplotlib.figure
fig = matplotlib.figure.Figure()
fig.add_subplot().plot([1, 2])
fig.get_axes = None  # the extraction fails; the png does not need it
fig`)
    assert.equal(result.chart, undefined)
    assert.equal(typeof result.png, 'string')
  })
})
