import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import type { StackResult } from '../../../stacks/shared.js';

/*
 * Pulumi's runtime mocks stand in for the engine and the providers: every
 * resource a stack registers is recorded with its resolved inputs, and the
 * mock answers with those inputs plus the few outputs the real provider
 * computes that the stacks read back (ARNs, URLs, identities, emails).
 */

/** One registered resource: its type token, logical name and resolved inputs. */
export interface RecordedResource {
  readonly type: string;
  readonly name: string;
  // biome-ignore lint/suspicious/noExplicitAny: resolved provider inputs are untyped JSON.
  readonly inputs: Record<string, any>;
  /** The provider reference (`urn::id`) the resource was registered with, if explicit. */
  readonly provider?: string;
}

/** Records what the stacks register. */
export interface Recorder {
  readonly resources: RecordedResource[];
  /** Resources of one type token, e.g. `aws:lambda/function:Function`. */
  ofType(type: string): RecordedResource[];
  /** The only resource of a type; fails when there are none or several. */
  one(type: string): RecordedResource;
  reset(): void;
}

const ACCOUNT = '123456789012';

function computedOutputs(
  type: string,
  name: string,
  inputs: Record<string, unknown>,
): Record<string, unknown> {
  const n = typeof inputs.name === 'string' ? inputs.name : name;
  if (type.startsWith('aws:')) {
    const service = type.split(':')[1]?.split('/')[0] ?? 'x';
    return {
      arn: `arn:aws:${service}:eu-west-1:${ACCOUNT}:${n}`,
      name: n,
      ...(type === 'aws:sqs/queue:Queue'
        ? { url: `https://sqs.eu-west-1.amazonaws.com/${ACCOUNT}/${n}` }
        : {}),
      ...(type === 'aws:lambda/functionUrl:FunctionUrl'
        ? { functionUrl: 'https://abcdefghij0123456789.lambda-url.eu-west-1.on.aws/' }
        : {}),
    };
  }
  if (type.startsWith('azure-native:')) {
    return {
      id: `/subscriptions/mock/resourceGroups/mock/providers/${type}/${n}`,
      name: n,
      ...(type === 'azure-native:web:WebApp'
        ? { identity: { type: 'SystemAssigned', principalId: 'principal-of-the-function-app' } }
        : {}),
      ...(type === 'azure-native:storage:StorageAccount'
        ? { primaryEndpoints: { blob: `https://${n}.blob.core.windows.net/` } }
        : {}),
    };
  }
  if (type.startsWith('gcp:')) {
    return {
      name: n,
      ...(type === 'gcp:serviceaccount/account:Account'
        ? { email: `${String(inputs.accountId)}@${String(inputs.project)}.iam.gserviceaccount.com` }
        : {}),
      ...(type === 'gcp:cloudfunctionsv2/function:Function'
        ? { url: `https://${n}-mock.a.run.app` }
        : {}),
      ...(type === 'gcp:projects/iAMCustomRole:IAMCustomRole'
        ? { name: `projects/${String(inputs.project)}/roles/${String(inputs.roleId)}` }
        : {}),
    };
  }
  return {};
}

/** Pulumi's wire marker for a secret value: `{ [SECRET_SIG]: SECRET_VALUE, value }`. */
const SECRET_SIG = '4dabf18193072939515e22adb298388d';
const SECRET_VALUE = '1b47061264138c4ac30d75fd1eb44270';

/** Inputs with secrets unwrapped, so tests read what the provider would receive. */
function reveal(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reveal);
  // Only plain JSON objects: assets and archives keep their class.
  if (v === null || typeof v !== 'object' || Object.getPrototypeOf(v) !== Object.prototype)
    return v;
  const o = v as Record<string, unknown>;
  if (o[SECRET_SIG] === SECRET_VALUE) return reveal(o.value);
  return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, reveal(x)]));
}

/** Install the mocks for this test file (call once, before any stack runs). */
export async function installMocks(): Promise<Recorder> {
  const resources: RecordedResource[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const inputs = reveal(args.inputs) as Record<string, unknown>;
        resources.push({
          type: args.type,
          name: args.name,
          inputs,
          ...(args.provider !== undefined ? { provider: args.provider } : {}),
        });
        const computed: Record<string, unknown> = computedOutputs(args.type, args.name, inputs);
        return {
          id: typeof computed.id === 'string' ? computed.id : `${args.name}-id`,
          state: { ...args.inputs, ...computed },
        };
      },
      call(args) {
        switch (args.token) {
          case 'aws:index/getCallerIdentity:getCallerIdentity':
            return { accountId: ACCOUNT, arn: `arn:aws:iam::${ACCOUNT}:user/test`, userId: 'x' };
          case 'aws:index/getPartition:getPartition':
            return { partition: 'aws', dnsSuffix: 'amazonaws.com' };
          case 'azure-native:storage:listStorageAccountServiceSAS':
            return { serviceSasToken: 'sv=2022-11-02&sr=b&sp=r&sig=mock' };
          case 'azure-native:storage:listStorageAccountKeys':
            return { keys: [{ keyName: 'key1', value: 'mock-key', permissions: 'FULL' }] };
          default:
            throw new Error(`no mock for call ${args.token}`);
        }
      },
    },
    'lbsync',
    'test',
    false,
  );
  return {
    resources,
    ofType: (type) => resources.filter((r) => r.type === type),
    one(type) {
      const found = resources.filter((r) => r.type === type);
      if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
      return found[0] as RecordedResource;
    },
    reset() {
      resources.length = 0;
    },
  };
}

/** The value of an output, once the mocks resolved it. */
export function resolvedValue<T>(output: pulumi.Input<T>): Promise<T> {
  return new Promise((resolve) => pulumi.output(output).apply((v) => resolve(v as T)));
}

/** Wait until every resource of a stack is registered and its outputs are resolved. */
export async function settle(result: StackResult): Promise<Record<string, string>> {
  await Promise.all(result.resources.map((r) => resolvedValue(r.urn)));
  const entries = await Promise.all(
    Object.entries(result.outputs).map(async ([k, v]) => [k, await resolvedValue(v)] as const),
  );
  return Object.fromEntries(entries);
}

/** A throwaway package dir with a stub bundle, enough for the stacks' checks. */
export function stubPackage(cloud: string): { readonly dir: string; readonly remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `lbsync-stack-${cloud}-`));
  mkdirSync(join(dir, cloud));
  writeFileSync(join(dir, cloud, 'index.mjs'), 'export {};\n');
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
