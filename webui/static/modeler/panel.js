// The Xiaowei properties panel: what the selected element means for Xiaowei (lane role, step kind,
// time limit, form fields, legal basis, notice period, gateway conditions, end outcome), written into
// the BPMN as xw: extension elements. Plain DOM, Chinese labels, inline checks.

import { NAME_RE, TIME_LIMIT_RE, XwWriter, durationParam, is, xwAll, xwOne } from './xw.js';

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function select(id, options, value, onchange, label) {
  const el = h('select', { id, 'aria-label': label, onchange: (e) => onchange(e.target.value) },
    options.map((o) => h('option', { value: o.key, selected: o.key === value }, o.zh)));
  if (value && !options.some((o) => o.key === value)) {
    el.prepend(h('option', { value, selected: true }, `${value}(未知)`));
  }
  return el;
}

function row(label, control, help, forId) {
  return h('div', { class: 'xw-row' }, h('label', { for: forId || control.id }, label), control,
    help ? h('p', { class: 'xw-help' }, help) : null);
}

const TYPE_ZH = {
  'bpmn:UserTask': '办理步骤', 'bpmn:Lane': '泳道', 'bpmn:Participant': '流程', 'bpmn:Process': '流程',
  'bpmn:ExclusiveGateway': '判断(排他网关)', 'bpmn:SequenceFlow': '连线', 'bpmn:StartEvent': '开始',
  'bpmn:EndEvent': '结束', 'bpmn:IntermediateCatchEvent': '定时(公示期)',
};

export class XwPanel {
  constructor(modeler, container, data, options) {
    this.modeler = modeler;
    this.container = container;
    this.data = data;
    this.options = options;
    this.w = new XwWriter(modeler);
    this.element = null;
    this.busy = false;
    this.checkSeq = 0;
    modeler.get('eventBus').on('selection.changed', (e) => {
      this.element = e.newSelection.length === 1 ? e.newSelection[0] : null;
      this.render();
    });
    modeler.get('eventBus').on('commandStack.changed', () => {
      if (!this.busy) setTimeout(() => this.render(), 0);
    });
    this.render();
  }

  // Run panel changes as commands without re-rendering the panel under the user's cursor.
  apply(fn, rerender) {
    this.busy = true;
    try {
      fn();
    } finally {
      this.busy = false;
    }
    if (rerender) this.render();
  }

  render() {
    let element = this.element;
    if (element && element.type === 'label') element = element.labelTarget;
    if (element && !this.w.registry.get(element.id)) element = this.element = null;
    const body = [];
    if (!element) {
      body.push(...this.processSection());
    } else {
      const bo = element.businessObject;
      const kind = Object.keys(TYPE_ZH).find((t) => bo.$type === t) || bo.$type;
      body.push(h('h2', {}, `${TYPE_ZH[kind] || kind}`), h('p', { class: 'xw-id' }, `编号:${bo.id}`));
      if (is(bo, 'bpmn:Participant')) body.push(...this.processSection(true));
      else if (is(bo, 'bpmn:Lane')) body.push(...this.laneSection(element));
      else if (is(bo, 'bpmn:UserTask')) body.push(...this.taskSection(element));
      else if (is(bo, 'bpmn:ExclusiveGateway')) body.push(...this.gatewaySection(element));
      else if (is(bo, 'bpmn:SequenceFlow')) body.push(...this.flowSection(element));
      else if (is(bo, 'bpmn:EndEvent')) body.push(...this.endSection(element));
      else if (is(bo, 'bpmn:IntermediateCatchEvent')) body.push(...this.timerSection(element));
      else {
        body.push(this.nameRow(element));
        if (is(bo, 'bpmn:Task') || is(bo, 'bpmn:Activity')) {
          body.push(h('p', { class: 'xw-error' }, '小微只执行“用户任务(办理步骤)”:请用扳手图标“更改类型”改为用户任务。'));
        }
      }
    }
    this.container.replaceChildren(...body);
  }

  nameRow(element, label) {
    const bo = element.businessObject;
    const input = h('input', { type: 'text', id: 'xw-name', value: bo.name || '', maxlength: 200,
      onchange: (e) => this.apply(() => this.w.modeling.updateLabel(element, e.target.value.trim() || undefined)) });
    return row(label || '名称', input);
  }

  // -- process ------------------------------------------------------------------------------------
  processSection(withHeading) {
    const out = [];
    if (!withHeading) out.push(h('h2', {}, '流程'), h('p', { class: 'xw-help' }, '选中泳道、步骤、连线等元素后在此编辑其属性。'));
    const { element, bo } = this.w.processTarget();
    const params = xwAll(bo, 'Parameter');
    out.push(h('h3', {}, '本地参数(条件和公示期中用 param("键") 读取)'));
    if (!params.length) out.push(h('p', { class: 'xw-help' }, '没有参数。'));
    for (const p of params) {
      const input = h('input', { type: 'text', id: `xw-param-${p.key}`, value: p.default || '',
        onchange: (e) => this.apply(() => this.w.modeling.updateModdleProperties(element, p, { default: e.target.value.trim() })) });
      out.push(row(`${p.label || p.key}(${p.key}${p.unit ? ',' + p.unit : ''})默认值`, input));
    }
    return out;
  }

  // -- lane ---------------------------------------------------------------------------------------
  laneSection(element) {
    const bo = element.businessObject;
    const role = xwOne(bo, 'Role');
    const roles = [{ key: '', zh: '请选择角色' }, ...this.data.roles];
    const control = select('xw-role', roles, role ? role.key : '', (value) => this.apply(() => {
      const before = role ? this.data.all_roles[role.key] : null;
      if (!value) {
        this.w.removeAll(element, 'Role');
      } else {
        this.w.set(element, 'Role', { key: value });
        if (!bo.name || bo.name === before) this.w.modeling.updateLabel(element, this.data.all_roles[value] || value);
      }
    }, true), '角色');
    const out = [this.nameRow(element, '泳道名称'), row('办理角色', control, '由谁办理本泳道中的步骤(xw:role)。')];
    if (!role || !role.key) out.push(h('p', { class: 'xw-error' }, '泳道未指定角色:请选择。'));
    return out;
  }

  // -- user task ----------------------------------------------------------------------------------
  taskSection(element) {
    const bo = element.businessObject;
    const step = xwOne(bo, 'Step');
    const out = [this.nameRow(element, '步骤名称')];
    const kind = select('xw-kind', this.data.kinds, step ? step.kind : 'task',
      (value) => this.apply(() => this.w.set(element, 'Step', { kind: value }), true), '步骤类型');
    out.push(row('步骤类型', kind));

    const limitError = h('p', { class: 'xw-error', id: 'xw-time-limit-error', hidden: true });
    const limit = h('input', { type: 'text', id: 'xw-time-limit', value: (step && step.timeLimit) || '', maxlength: 8,
      placeholder: '5wd / 10d / 48h',
      onchange: (e) => {
        const value = e.target.value.trim();
        if (value && !TIME_LIMIT_RE.test(value)) {
          limitError.textContent = '时限格式应为 5wd(工作日)、10d(自然日)或 48h(小时)。';
          limitError.hidden = false;
          return;
        }
        limitError.hidden = true;
        this.apply(() => this.w.set(element, 'Step', { kind: (step && step.kind) || 'task', timeLimit: value || undefined }));
      } });
    out.push(row('时限', limit, 'wd 工作日,d 自然日,h 小时;留空为不限。'), limitError);

    const docs = (bo.documentation || [])[0];
    const doc = h('textarea', { id: 'xw-instructions', rows: 3,
      onchange: (e) => this.apply(() => this.w.setDocumentation(element, e.target.value.trim())) });
    doc.value = docs ? docs.text || '' : '';
    out.push(row('办理说明', doc));

    const basis = xwOne(bo, 'Basis');
    const basisInput = h('input', { type: 'text', id: 'xw-basis', value: basis ? basis.text || '' : '', maxlength: 500,
      onchange: (e) => this.apply(() => this.w.setText(element, 'Basis', e.target.value.trim())) });
    out.push(row('法律政策依据', basisInput));

    if (step && step.kind === 'disclosure') out.push(...this.disclosureRows(element));
    out.push(...this.fieldsSection(element));
    return out;
  }

  disclosureRows(element) {
    const bo = element.businessObject;
    const disclosure = xwOne(bo, 'Disclosure') || {};
    const params = this.w.parameters();
    const out = [h('h3', {}, '公开公示')];
    const what = h('input', { type: 'text', id: 'xw-disclosure-what', value: disclosure.what || '',
      onchange: (e) => this.apply(() => this.w.set(element, 'Disclosure', { what: e.target.value.trim() })) });
    const where = h('input', { type: 'text', id: 'xw-disclosure-where', value: disclosure.where || '',
      placeholder: '村务公开栏;线上平台',
      onchange: (e) => this.apply(() => this.w.set(element, 'Disclosure', { where: e.target.value.trim() })) });
    const options = [{ key: '', zh: '请选择参数' }, ...params.map((p) => ({ key: p.key, zh: `${p.label || p.key}(${p.default || '?'}天)` }))];
    const minDays = select('xw-disclosure-param', options, disclosure.minDaysParam || '',
      (value) => this.apply(() => this.w.set(element, 'Disclosure', { minDaysParam: value || undefined }), true), '最短公示天数参数');
    out.push(row('公示内容', what), row('公示地点(用“;”分隔)', where), row('最短公示天数(参数)', minDays));
    const param = params.find((p) => p.key === disclosure.minDaysParam);
    if (param) out.push(this.paramDaysRow(param, 'xw-disclosure-days'));
    return out;
  }

  paramDaysRow(param, id) {
    const { element } = this.w.processTarget();
    const input = h('input', { type: 'number', id, min: 1, max: 999, value: param.default || '',
      onchange: (e) => this.apply(() => this.w.modeling.updateModdleProperties(element, param, { default: e.target.value.trim() })) });
    return row(`公示期最短天数(参数 ${param.key} 的默认值)`, input, '镇街或村可在“参数”中按本地规定调整。');
  }

  fieldsSection(element) {
    const bo = element.businessObject;
    const fields = xwAll(bo, 'Field');
    const out = [h('h3', {}, `表单字段(${fields.length})`)];
    const names = fields.map((f) => f.name);
    const list = h('ol', { class: 'xw-fields', id: 'xw-fields' });
    fields.forEach((f, index) => {
      const problems = [];
      if (!f.name || !NAME_RE.test(f.name)) problems.push('字段名须以英文字母开头,只含字母、数字和“_”。');
      else if (names.filter((n) => n === f.name).length > 1) problems.push('字段名重复。');
      if (!f.label) problems.push('请填写显示名称。');
      const update = (props, rerender) => this.apply(() => this.w.modeling.updateModdleProperties(element, f, props), rerender);
      list.append(h('li', { class: 'xw-field' + (problems.length ? ' has-error' : ''), dataset: { field: f.name || '' } },
        h('div', { class: 'xw-field-line' },
          h('input', { type: 'text', class: 'xw-field-label', value: f.label || '', placeholder: '显示名称', 'aria-label': '显示名称',
            onchange: (e) => update({ label: e.target.value.trim() }, true) }),
          h('input', { type: 'text', class: 'xw-field-name', value: f.name || '', placeholder: '字段名(英文)', 'aria-label': '字段名',
            onchange: (e) => update({ name: e.target.value.trim() }, true) })),
        h('div', { class: 'xw-field-line' },
          select(null, this.data.field_types, f.type || 'text', (value) => update({ type: value }, true), '类型'),
          h('label', { class: 'xw-check' }, h('input', { type: 'checkbox', class: 'xw-field-required', checked: f.required === 'true',
            onchange: (e) => update({ required: e.target.checked ? 'true' : 'false' }) }), '必填'),
          h('label', { class: 'xw-check' }, h('input', { type: 'checkbox', class: 'xw-field-public', checked: f.public === 'true',
            onchange: (e) => update({ public: e.target.checked ? 'true' : 'false' }) }), '公开')),
        h('div', { class: 'xw-field-buttons' },
          h('button', { type: 'button', class: 'xw-btn', title: '上移', disabled: index === 0,
            onclick: () => this.apply(() => this.w.moveField(element, f, -1), true) }, '↑'),
          h('button', { type: 'button', class: 'xw-btn', title: '下移', disabled: index === fields.length - 1,
            onclick: () => this.apply(() => this.w.moveField(element, f, 1), true) }, '↓'),
          h('button', { type: 'button', class: 'xw-btn xw-field-remove', title: '删除字段',
            onclick: () => this.apply(() => this.w.remove(element, f), true) }, '删除')),
        problems.map((p) => h('p', { class: 'xw-error' }, p))));
    });
    out.push(list);
    out.push(h('button', { type: 'button', class: 'xw-btn', id: 'xw-add-field', onclick: () => this.apply(() => {
      let n = fields.length + 1;
      const taken = new Set(this.w.fieldNames());
      while (taken.has(`field_${n}`)) n++;
      this.w.addField(element, { name: `field_${n}`, label: '', type: 'text', required: 'false', public: 'false' });
    }, true) }, '+ 添加字段'));
    return out;
  }

  // -- gateway and flows --------------------------------------------------------------------------
  gatewaySection(element) {
    const bo = element.businessObject;
    const out = [this.nameRow(element, '判断名称')];
    const outgoing = bo.outgoing || [];
    const options = [{ key: '', zh: '(无默认出口)' }, ...outgoing.map((f) => ({ key: f.id, zh: `${f.name || f.id} → ${(f.targetRef && f.targetRef.name) || ''}` }))];
    out.push(row('默认出口(其余条件都不满足时)', select('xw-default', options, bo.default ? bo.default.id : '', (value) => this.apply(() => {
      const flow = outgoing.find((f) => f.id === value);
      this.w.modeling.updateProperties(element, { default: flow || undefined });
    }, true), '默认出口')));
    const list = h('ul', { class: 'xw-exits' });
    for (const f of outgoing) {
      const cond = f.conditionExpression ? f.conditionExpression.body : '';
      list.append(h('li', {}, `${f.name || f.id}:${bo.default === f ? '默认出口' : cond || '(无条件)'}`));
    }
    out.push(h('h3', {}, '出口'), list, h('p', { class: 'xw-help' }, '选中出口连线编辑其条件。'));
    return out;
  }

  flowSection(element) {
    const bo = element.businessObject;
    const out = [this.nameRow(element, '连线名称(图上显示,如“同意”)')];
    const source = bo.sourceRef;
    if (!is(source, 'bpmn:ExclusiveGateway')) {
      out.push(h('p', { class: 'xw-help' }, '只有从判断(排他网关)出来的连线才能写条件。'));
      return out;
    }
    const gatewayShape = this.w.registry.get(source.id);
    const isDefault = source.default === bo;
    out.push(h('label', { class: 'xw-check' }, h('input', { type: 'checkbox', id: 'xw-is-default', checked: isDefault,
      onchange: (e) => this.apply(() => this.w.modeling.updateProperties(gatewayShape, { default: e.target.checked ? bo : undefined }), true) }),
    '默认出口(其余条件都不满足时走这里)'));
    const message = h('p', { class: 'xw-check-result', id: 'xw-condition-result', role: 'status' });
    const area = h('textarea', { id: 'xw-condition', rows: 3, disabled: isDefault, placeholder: '如 approved == False 或 amount >= param("major_amount")',
      onchange: (e) => {
        const text = e.target.value.trim();
        this.apply(() => this.w.setCondition(element, text));
        this.checkCondition(text, message);
      } });
    area.value = bo.conditionExpression ? bo.conditionExpression.body || '' : '';
    out.push(row('条件', area, `可用字段:${this.w.fieldNames().join('、') || '无'};参数:${this.w.parameters().map((p) => p.key).join('、') || '无'}`), message);
    if (area.value) this.checkCondition(area.value, message);
    return out;
  }

  async checkCondition(text, target) {
    const seq = ++this.checkSeq;
    target.textContent = '正在检查条件…';
    target.className = 'xw-check-result';
    try {
      const res = await fetch(this.options.checkUrl, {
        method: 'POST', credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': this.options.csrf, Accept: 'application/json' },
        body: JSON.stringify({ expression: text, fields: this.w.fieldNames(), params: this.w.parameters().map((p) => p.key) }),
      });
      const body = await res.json();
      if (seq !== this.checkSeq) return;
      target.textContent = body.message || (res.ok ? '' : '检查失败。');
      target.className = 'xw-check-result ' + (body.ok ? 'ok' : 'bad');
    } catch (err) {
      if (seq === this.checkSeq) target.textContent = '无法连接服务器检查条件。';
    }
  }

  // -- events -------------------------------------------------------------------------------------
  endSection(element) {
    const end = xwOne(element.businessObject, 'End');
    return [this.nameRow(element, '结束名称'),
      row('结果', select('xw-outcome', this.data.outcomes, end ? end.outcome : 'completed',
        (value) => this.apply(() => this.w.set(element, 'End', { outcome: value }), true), '结果'),
      '“办结”的路径上必须经过要求的公示和监督环节。')];
  }

  timerSection(element) {
    const bo = element.businessObject;
    const out = [this.nameRow(element)];
    const definition = (bo.eventDefinitions || []).find((d) => is(d, 'bpmn:TimerEventDefinition'));
    if (!definition) {
      out.push(h('p', { class: 'xw-error' }, '小微只支持定时中间事件(公示期)。'));
      return out;
    }
    const notice = xwOne(bo, 'NoticePeriod');
    const steps = [{ key: '', zh: '(不是公示期)' }];
    this.w.registry.forEach((e) => {
      const step = xwOne(e.businessObject, 'Step');
      if (e.type !== 'label' && is(e.businessObject, 'bpmn:UserTask') && step && step.kind === 'disclosure') {
        steps.push({ key: e.businessObject.id, zh: e.businessObject.name || e.businessObject.id });
      }
    });
    out.push(row('是哪个公示步骤的公示期', select('xw-notice-for', steps, notice ? notice.for : '', (value) => this.apply(() => {
      if (value) this.w.set(element, 'NoticePeriod', { for: value });
      else this.w.removeAll(element, 'NoticePeriod');
    }, true), '公示步骤')));
    const expression = definition.timeDuration ? definition.timeDuration.body || '' : '';
    const message = h('p', { class: 'xw-check-result', id: 'xw-duration-result', role: 'status' });
    const input = h('input', { type: 'text', id: 'xw-duration', value: expression, placeholder: 'duration_days(param("notice_days"))',
      onchange: (e) => {
        const text = e.target.value.trim();
        this.apply(() => this.w.setTimerDuration(element, text), true);
      } });
    out.push(row('时长(表达式)', input), message);
    if (expression) this.checkCondition(expression, message);
    const key = durationParam(expression);
    const param = key && this.w.parameters().find((p) => p.key === key);
    if (param) out.push(this.paramDaysRow(param, 'xw-notice-days'));
    return out;
  }
}
