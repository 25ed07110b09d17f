// 流程图编辑器: bpmn-js (global BpmnJS from the vendored production bundle) with Chinese labels, the
// xw: moddle extension and the Xiaowei properties panel. Data comes from data-* attributes and JSON
// endpoints; saving sends the draft revision, and a conflict (409) keeps the diagram in the page.

import { translateModule } from './translate.js';
import { XwPanel } from './panel.js';

const root = document.getElementById('modeler-app');
const statusEl = document.getElementById('modeler-status');
const sourceEl = document.getElementById('modeler-source');
const saveButton = document.getElementById('modeler-save');
const problemsEl = document.getElementById('modeler-problems');

function status(text, kind) {
  statusEl.textContent = text;
  statusEl.className = 'modeler-status' + (kind ? ' ' + kind : '');
}

function showProblems(problems) {
  problemsEl.replaceChildren();
  if (!problems || !problems.length) {
    problemsEl.hidden = true;
    return;
  }
  const heading = document.createElement('h2');
  heading.textContent = `校验发现 ${problems.length} 处问题`;
  const list = document.createElement('ul');
  for (const p of problems) {
    const li = document.createElement('li');
    li.className = p.severity === 'error' ? 'error-text' : 'muted';
    li.textContent = `${p.severity === 'error' ? '错误' : '提示'}${p.element ? '〔' + p.element + '〕' : ''}${p.zh}`;
    list.append(li);
  }
  problemsEl.append(heading, list);
  problemsEl.hidden = false;
}

async function json(url, options) {
  const res = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' }, ...options });
  let body = {};
  try {
    body = await res.json();
  } catch (err) {
    body = { message: `服务器返回 ${res.status}` };
  }
  return { res, body };
}

const MIN_ZOOM = 0.8;  // below this, the chart's Chinese labels are too small to read

// Open a chart at a readable zoom: fit its width (not the whole chart, which shrinks wide procedures
// to illegible), never below MIN_ZOOM nor above 1; start at the left, lane labels clear of the palette.
function readableZoom(canvas) {
  canvas.zoom('fit-viewport');
  const box = canvas.viewbox();
  const inner = box.inner;
  const width = box.outer.width;
  let zoom = inner.width > 0 ? (width - 160) / inner.width : 1;
  zoom = Math.max(MIN_ZOOM, Math.min(1, zoom));
  canvas.zoom(zoom);
  canvas.viewbox({ x: inner.x - 110 / zoom, y: inner.y - 20 / zoom, width: box.outer.width / zoom,
    height: box.outer.height / zoom });
}

// Palette entries in Chinese (a tooltip on every icon) and the parts Xiaowei cannot run hidden.
const PALETTE_ZH = {
  'hand-tool': '移动画布(抓手)', 'lasso-tool': '框选多个元素', 'space-tool': '插入或移除空白',
  'global-connect-tool': '连线:从一个元素拖到另一个元素', 'create.start-event': '开始事件(流程从这里开始)',
  'create.intermediate-event': '中间事件(定时:等待一段时间)', 'create.end-event': '结束事件(办结或终止)',
  'create.exclusive-gateway': '排他网关(按条件走一条出口)', 'create.task': '步骤(由泳道中的角色办理)',
  'create.subprocess-expanded': '子流程(小微不能执行)', 'create.data-object': '数据对象(仅作说明,不执行)',
  'create.data-store': '数据存储(仅作说明,不执行)', 'create.participant-expanded': '泳池/参与者(小微一个事项只用一个泳池)',
  'create.group': '分组(仅作说明,不执行)',
};
const NOT_RUNNABLE = ['create.subprocess-expanded', 'create.data-object', 'create.data-store', 'create.group',
  'create.participant-expanded'];

function paletteInChinese(container) {
  for (const entry of container.querySelectorAll('.djs-palette .entry')) {
    const action = entry.getAttribute('data-action');
    const current = entry.getAttribute('title') || '';
    if (!current && PALETTE_ZH[action]) {  // the translated tooltip stays where bpmn-js wrote one
      entry.setAttribute('title', PALETTE_ZH[action]);
    }
    if (NOT_RUNNABLE.includes(action)) {
      entry.style.display = 'none';  // Xiaowei cannot run these: not offered
      entry.classList.add('xw-not-runnable');
    }
  }
}

// Element types Xiaowei does not run: marked on the chart (an imported diagram may hold them).
const NOT_RUN_TYPES = {
  'bpmn:DataStoreReference': '数据存储', 'bpmn:DataObjectReference': '数据对象', 'bpmn:Group': '分组',
  'bpmn:SubProcess': '子流程', 'bpmn:CallActivity': '调用活动', 'bpmn:ServiceTask': '服务任务',
  'bpmn:ScriptTask': '脚本任务', 'bpmn:SendTask': '发送任务', 'bpmn:ReceiveTask': '接收任务',
  'bpmn:BusinessRuleTask': '业务规则任务', 'bpmn:ManualTask': '手工任务', 'bpmn:Task': '无类型任务',
  'bpmn:InclusiveGateway': '包容网关', 'bpmn:EventBasedGateway': '事件网关', 'bpmn:ComplexGateway': '复杂网关',
};

function markNotRunnable(modeler) {
  const overlays = modeler.get('overlays');
  overlays.remove({ type: 'xw-not-run' });
  for (const element of modeler.get('elementRegistry').getAll()) {
    const kind = NOT_RUN_TYPES[element.type];
    if (!kind || element.type === 'bpmn:Process') continue;
    const badge = document.createElement('span');
    badge.className = 'xw-not-run';
    badge.textContent = '不执行';
    badge.title = `${kind}:小微不能执行,发布前请改为步骤或删除(导入助手可自动转换任务)`;
    overlays.add(element.id, 'xw-not-run', { position: { top: -10, right: 10 }, html: badge });
  }
}

async function main() {
  const descriptor = await (await fetch(new URL('./xw-moddle.json', import.meta.url))).json();
  const { res, body: data } = await json(root.dataset.dataUrl);
  if (!res.ok) {
    status(data.message || '无法加载流程图。', 'bad');
    return;
  }
  const modeler = new window.BpmnJS({
    container: '#modeler-canvas',
    additionalModules: [translateModule],
    moddleExtensions: { xw: descriptor },
  });
  try {
    await modeler.importXML(data.xml);
  } catch (err) {
    status('流程图无法显示:' + err.message, 'bad');
    return;
  }
  const canvas = modeler.get('canvas');
  readableZoom(canvas);
  paletteInChinese(document.getElementById('modeler-canvas'));
  let revision = data.revision;
  let dirty = false;
  sourceEl.textContent = `编辑:${data.source}`;
  new XwPanel(modeler, document.getElementById('xw-panel'), data,
    { checkUrl: root.dataset.checkUrl, csrf: root.dataset.csrf });
  markNotRunnable(modeler);
  modeler.get('eventBus').on('commandStack.changed', () => {
    markNotRunnable(modeler);
    dirty = true;
    status('有未保存的修改。', 'pending');
  });
  window.addEventListener('beforeunload', (e) => {
    if (dirty) {
      e.preventDefault();
      e.returnValue = '';
    }
  });
  saveButton.disabled = false;
  saveButton.addEventListener('click', async () => {
    saveButton.disabled = true;
    status('正在保存…', 'pending');
    try {
      const { xml } = await modeler.saveXML({ format: true });
      const post = (extra) => json(root.dataset.saveUrl, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': root.dataset.csrf, Accept: 'application/json' },
        body: JSON.stringify({ xml, revision, ...extra }),
      });
      let { res: saved, body } = await post({});
      if (saved.ok && body.needs_confirm) {
        // warned before saving: the step table (任务单) could no longer be rebuilt from this diagram
        if (!window.confirm(body.message)) {
          status('未保存:' + body.message.replace(/仍要保存吗?$/, '可继续修改后再保存。'), 'pending');
          return;
        }
        ({ res: saved, body } = await post({ confirm_table_loss: true }));
      }
      if (saved.ok) {
        revision = body.revision;
        dirty = false;
        sourceEl.textContent = `编辑:草稿第${revision}稿`;
        status(body.message, 'ok');
        showProblems(body.problems);
      } else if (saved.status === 409) {
        status(`${body.message} 您的修改仍保留在本页,未丢失:可下载备份或重新打开草稿后再合并。`, 'bad');
      } else {
        status(body.message || `保存失败(${saved.status})。`, 'bad');
      }
    } catch (err) {
      status('保存失败:' + err.message, 'bad');
    } finally {
      saveButton.disabled = false;
    }
  });
  window.xiaoweiModeler = modeler;  // for debugging and the browser test
  root.dataset.ready = 'true';
}

main().catch((err) => status('流程图编辑器出错:' + err.message, 'bad'));
