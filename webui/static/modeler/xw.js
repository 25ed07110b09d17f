// Reading and writing Xiaowei's xw: extension elements (docs/bpmn-extensions.md) through the bpmn-js
// moddle and the `modeling` service, so every change is one undoable command.

export const TIME_LIMIT_RE = /^\d+(d|wd|h)$/;
export const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const DURATION_PARAM_RE = /^\s*duration_days\(\s*param\(\s*"([A-Za-z_][A-Za-z0-9_]*)"\s*\)\s*\)\s*$/;

export function is(bo, type) {
  return !!bo && typeof bo.$instanceOf === 'function' && bo.$instanceOf(type);
}

export function extValues(bo) {
  return (bo && bo.extensionElements && bo.extensionElements.values) || [];
}

export function xwAll(bo, type) {
  return extValues(bo).filter((v) => v.$type === 'xw:' + type);
}

export function xwOne(bo, type) {
  return xwAll(bo, type)[0];
}

export function durationParam(expression) {
  const m = DURATION_PARAM_RE.exec(expression || '');
  return m ? m[1] : null;
}

export class XwWriter {
  constructor(modeler) {
    this.modeler = modeler;
    this.moddle = modeler.get('moddle');
    this.modeling = modeler.get('modeling');
    this.registry = modeler.get('elementRegistry');
  }

  // The diagram element through which a business object is changed (the process: its participant).
  processTarget() {
    const root = this.modeler.get('canvas').getRootElement();
    const rootBo = root.businessObject;
    if (is(rootBo, 'bpmn:Collaboration')) {
      const shape = this.registry.filter((e) => is(e.businessObject, 'bpmn:Participant') && e.businessObject.processRef)[0];
      return shape ? { element: shape, bo: shape.businessObject.processRef } : { element: root, bo: rootBo };
    }
    return { element: root, bo: rootBo };
  }

  ensureExt(element, bo) {
    bo = bo || element.businessObject;
    if (!bo.extensionElements) {
      const ext = this.moddle.create('bpmn:ExtensionElements', { values: [] });
      ext.$parent = bo;
      this.modeling.updateModdleProperties(element, bo, { extensionElements: ext });
    }
    if (!bo.extensionElements.values) {
      this.modeling.updateModdleProperties(element, bo.extensionElements, { values: [] });
    }
    return bo.extensionElements;
  }

  // The first xw:<type> of the element, created (with attrs) when missing.
  ensure(element, type, attrs, bo) {
    bo = bo || element.businessObject;
    const existing = xwOne(bo, type);
    if (existing) return existing;
    const ext = this.ensureExt(element, bo);
    const item = this.moddle.create('xw:' + type, attrs || {});
    item.$parent = ext;
    this.modeling.updateModdleProperties(element, ext, { values: [...ext.values, item] });
    return item;
  }

  set(element, type, props, bo) {
    const item = this.ensure(element, type, {}, bo);
    this.modeling.updateModdleProperties(element, item, props);
    return item;
  }

  // Set the text of xw:<type> (basis, description); empty text removes the element.
  setText(element, type, text, bo) {
    bo = bo || element.businessObject;
    if (!text) {
      this.removeAll(element, type, bo);
      return;
    }
    this.set(element, type, { text }, bo);
  }

  removeAll(element, type, bo) {
    bo = bo || element.businessObject;
    if (!bo.extensionElements || !xwAll(bo, type).length) return;
    const ext = bo.extensionElements;
    this.modeling.updateModdleProperties(element, ext, { values: ext.values.filter((v) => v.$type !== 'xw:' + type) });
  }

  remove(element, item) {
    const ext = element.businessObject.extensionElements;
    this.modeling.updateModdleProperties(element, ext, { values: ext.values.filter((v) => v !== item) });
  }

  // Add an xw:field after the element's last field.
  addField(element, attrs) {
    const ext = this.ensureExt(element);
    const item = this.moddle.create('xw:Field', attrs);
    item.$parent = ext;
    const values = [...ext.values];
    let at = values.length;
    for (let i = values.length - 1; i >= 0; i--) {
      if (values[i].$type === 'xw:Field') { at = i + 1; break; }
    }
    values.splice(at, 0, item);
    this.modeling.updateModdleProperties(element, ext, { values });
    return item;
  }

  // Swap a field with its neighbour among the fields (-1 up, +1 down).
  moveField(element, item, delta) {
    const ext = element.businessObject.extensionElements;
    const fields = xwAll(element.businessObject, 'Field');
    const index = fields.indexOf(item);
    const other = fields[index + delta];
    if (index < 0 || !other) return;
    const values = [...ext.values];
    const a = values.indexOf(item);
    const b = values.indexOf(other);
    values[a] = other;
    values[b] = item;
    this.modeling.updateModdleProperties(element, ext, { values });
  }

  setDocumentation(element, text) {
    const bo = element.businessObject;
    const docs = text ? [this.moddle.create('bpmn:Documentation', { text })] : [];
    this.modeling.updateModdleProperties(element, bo, { documentation: docs });
  }

  setCondition(flowElement, text) {
    const condition = text ? this.moddle.create('bpmn:FormalExpression', { body: text }) : undefined;
    this.modeling.updateProperties(flowElement, { conditionExpression: condition });
  }

  setTimerDuration(element, text) {
    const definition = (element.businessObject.eventDefinitions || []).find((d) => is(d, 'bpmn:TimerEventDefinition'));
    if (!definition) return;
    const duration = this.moddle.create('bpmn:FormalExpression', { body: text });
    this.modeling.updateModdleProperties(element, definition, { timeDuration: duration });
  }

  // Names of every form field and every declared parameter of the process.
  fieldNames() {
    const names = new Set();
    this.registry.forEach((e) => {
      for (const f of xwAll(e.businessObject, 'Field')) if (f.name) names.add(f.name);
    });
    return [...names];
  }

  parameters() {
    const { bo } = this.processTarget();
    return xwAll(bo, 'Parameter');
  }
}
