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
  canvas.zoom('fit-viewport');
  canvas.zoom(canvas.zoom() * 0.88, { x: 0, y: 0 });
  canvas.scroll({ dx: 100, dy: 10 });  // keep the lane labels clear of the palette
  let revision = data.revision;
  let dirty = false;
  sourceEl.textContent = `编辑:${data.source}`;
  new XwPanel(modeler, document.getElementById('xw-panel'), data,
    { checkUrl: root.dataset.checkUrl, csrf: root.dataset.csrf });
  modeler.get('eventBus').on('commandStack.changed', () => {
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
      const { res: saved, body } = await json(root.dataset.saveUrl, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': root.dataset.csrf, Accept: 'application/json' },
        body: JSON.stringify({ xml, revision }),
      });
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
