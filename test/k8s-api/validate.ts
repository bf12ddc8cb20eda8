// Request-body validation for the test API server against the real Kubernetes OpenAPI schemas, as
// compiled by `kubernetes-models`, plus strict unknown-field rejection (what a real API server does
// with `fieldValidation=Strict`, the kubectl default). The compiled schemas do not forbid extra
// properties, so unknown fields are found by probing: a field is known when the schema checks it,
// i.e. when replacing its value with one of the wrong type makes validation fail at exactly that path.
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Pod } from 'kubernetes-models/v1/Pod';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { SelfSubjectAccessReview } from 'kubernetes-models/authorization.k8s.io/v1/SelfSubjectAccessReview';
import { DeleteOptions } from '@kubernetes-models/apimachinery/apis/meta/v1/DeleteOptions';

interface SchemaError { instancePath: string; message?: string; keyword?: string; params?: Record<string, unknown> }
type ModelCtor = new (data: never) => { validate(): void };

const MODELS: Record<string, ModelCtor> = {
  Namespace: Namespace as unknown as ModelCtor,
  Pod: Pod as unknown as ModelCtor,
  ServiceAccount: ServiceAccount as unknown as ModelCtor,
  DaemonSet: DaemonSet as unknown as ModelCtor,
  SelfSubjectAccessReview: SelfSubjectAccessReview as unknown as ModelCtor,
  DeleteOptions: DeleteOptions as unknown as ModelCtor,
};

function schemaErrors(ctor: ModelCtor, body: unknown): SchemaError[] {
  try {
    new ctor(structuredClone(body) as never).validate();
    return [];
  } catch (e) {
    const errs = (e as { errors?: SchemaError[] }).errors;
    if (Array.isArray(errs)) return errs;
    throw e;
  }
}

const PROBES: unknown[] = [[], true];

function unknownFields(ctor: ModelCtor, body: Record<string, unknown>): string[] {
  const out: string[] = [];
  const walk = (node: unknown, path: string[]): void => {
    if (Array.isArray(node)) {
      node.forEach((v, i) => walk(v, [...path, String(i)]));
      return;
    }
    if (!node || typeof node !== 'object') return;
    for (const key of Object.keys(node)) {
      if (path.length === 0 && (key === 'apiVersion' || key === 'kind')) continue;
      const ptr = '/' + [...path, key].map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
      let known = false;
      for (const probe of PROBES) {
        const copy = structuredClone(body);
        let cur = copy as Record<string, unknown>;
        for (const p of path) cur = cur[p] as Record<string, unknown>;
        cur[key] = probe;
        if (schemaErrors(ctor, copy).some((e) => e.instancePath === ptr)) {
          known = true;
          break;
        }
      }
      if (!known) out.push(`.${[...path, key].join('.')}`);
      // (a managedFields entry's fieldsV1 is a free-form trie of field names: nothing in it is a field of the schema)
      else if (key !== 'fieldsV1') walk((node as Record<string, unknown>)[key], [...path, key]);
    }
  };
  walk(body, []);
  return out;
}

export interface Invalid {
  /** Field errors in the API server's wording. */
  causes: Array<{ reason: string; message: string; field: string }>;
}

/** Returns null when the body is a valid `kind`, else the causes a 422/400 Status reports. */
export function validateBody(kind: string, body: unknown): Invalid | null {
  const ctor = MODELS[kind];
  if (!ctor) throw new Error(`test API server: no schema for ${kind}`);
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    return { causes: [{ reason: 'FieldValueInvalid', message: 'body must be a JSON object', field: '' }] };
  }
  const causes: Invalid['causes'] = [];
  for (const e of schemaErrors(ctor, body)) {
    const field = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
    causes.push({ reason: e.keyword === 'required' ? 'FieldValueRequired' : 'FieldValueInvalid', message: `${e.message ?? 'invalid'}`, field });
  }
  if (causes.length === 0) {
    for (const f of unknownFields(ctor, body as Record<string, unknown>)) {
      causes.push({ reason: 'FieldValueInvalid', message: `unknown field "${f.slice(1)}"`, field: f.slice(1) });
    }
  }
  return causes.length ? { causes } : null;
}
