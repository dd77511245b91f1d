import type { V1Node } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { nodeChangeMatters } from '../../../adapters/kubernetes/eligibility.js';
import {
  makeNode,
  tweakAddTaint,
  tweakDeleted,
  tweakExclude,
  tweakHeartbeat,
  tweakInternalIp,
  tweakProviderID,
  tweakSetCondition,
  tweakSetLabel,
  tweakSetReady,
  tweakToBeDeleted,
  tweakUnsetCondition,
} from './node-tweaks.js';

/*
 * Rows come from k8s.io/cloud-provider controllers/service/controller_test.go
 * at 46666112 (Test_shouldSyncUpdatedNode_individualPredicates and
 * _compoundedPredicates), each with upstream's answer and lbsync's. Where
 * they differ the row's name says why.
 */

describe('nodeChangeMatters', () => {
  const ex = tweakExclude('');
  const pid = (id: string) => tweakProviderID(id);
  const other = 'aws:///eu-west-1a/i-0a1b2c3d4e5f6ffff';
  // [name, old, new, upstream shouldSyncUpdatedNode, lbsync]
  const rows: [string, V1Node, V1Node, boolean, boolean][] = [
    // Test_shouldSyncUpdatedNode_individualPredicates
    ['nothing changed', makeNode(), makeNode(), false, false],
    ['excluded F->T', makeNode(), makeNode(ex), true, true],
    ['excluded changed T->F', makeNode(ex), makeNode(), true, true],
    ['excluded changed T->T', makeNode(ex), makeNode(ex), false, false],
    ['other taint F->T', makeNode(), makeNode(tweakAddTaint('other')), false, false],
    ['other taint T->F', makeNode(tweakAddTaint('other')), makeNode(), false, false],
    ['other label changed F->T', makeNode(), makeNode(tweakSetLabel('other', '')), false, false],
    ['other label changed T->F', makeNode(tweakSetLabel('other', '')), makeNode(), false, false],
    [
      'readiness changed F->F',
      makeNode(tweakSetReady(false)),
      makeNode(tweakSetReady(false)),
      false,
      false,
    ],
    [
      'readiness changed F->unset',
      makeNode(tweakSetReady(false)),
      makeNode(tweakUnsetCondition('Ready')),
      false,
      false,
    ],
    [
      'readiness changed unset->F',
      makeNode(tweakUnsetCondition('Ready')),
      makeNode(tweakSetReady(false)),
      false,
      false,
    ],
    [
      'readiness changed unset->unset',
      makeNode(tweakUnsetCondition('Ready')),
      makeNode(tweakUnsetCondition('Ready')),
      false,
      false,
    ],
    [
      'ready F, other condition changed F->T',
      makeNode(tweakSetReady(false), tweakSetCondition('DiskPressure', 'False')),
      makeNode(tweakSetReady(false), tweakSetCondition('DiskPressure', 'True')),
      false,
      false,
    ],
    [
      'ready F, other condition changed T->F',
      makeNode(tweakSetReady(false), tweakSetCondition('DiskPressure', 'True')),
      makeNode(tweakSetReady(false), tweakSetCondition('DiskPressure', 'False')),
      false,
      false,
    ],
    [
      'ready T, other condition changed F->T',
      makeNode(tweakSetCondition('Other', 'False')),
      makeNode(tweakSetCondition('Other', 'True')),
      false,
      false,
    ],
    [
      'ready T, other condition changed T->F',
      makeNode(tweakSetCondition('Other', 'True')),
      makeNode(tweakSetCondition('Other', 'False')),
      false,
      false,
    ],
    // lbsync drops a deleted node at once; upstream waits for the Node's delete event.
    [
      'deletionTimestamp F -> T (lbsync: verdict changes)',
      makeNode(),
      makeNode(tweakDeleted),
      false,
      true,
    ],
    ['providerID set F -> T', makeNode(pid('')), makeNode(), true, true],
    ['providerID set T-> F', makeNode(), makeNode(pid('')), true, true],
    ['providerID change', makeNode(), makeNode(pid(other)), true, true],
    // Test_shouldSyncUpdatedNode_compoundedPredicates
    [
      'tainted T, excluded F->T',
      makeNode(tweakToBeDeleted),
      makeNode(tweakToBeDeleted, ex),
      true,
      true,
    ],
    [
      'tainted T, excluded T->F',
      makeNode(tweakToBeDeleted, ex),
      makeNode(tweakToBeDeleted),
      true,
      true,
    ],
    [
      'tainted T, providerID set F->T',
      makeNode(tweakToBeDeleted, pid('')),
      makeNode(tweakToBeDeleted),
      true,
      true,
    ],
    [
      'tainted T, providerID set T->F',
      makeNode(tweakToBeDeleted),
      makeNode(tweakToBeDeleted, pid('')),
      true,
      true,
    ],
    [
      'tainted T, providerID change',
      makeNode(tweakToBeDeleted),
      makeNode(tweakToBeDeleted, pid(other)),
      true,
      true,
    ],
    [
      'tainted T, ready F->T',
      makeNode(tweakToBeDeleted, tweakSetReady(false)),
      makeNode(tweakToBeDeleted),
      false,
      false,
    ],
    [
      'tainted T, ready T->F',
      makeNode(tweakToBeDeleted),
      makeNode(tweakToBeDeleted, tweakSetReady(false)),
      false,
      false,
    ],
    ['excluded T, tainted F->T', makeNode(ex), makeNode(ex, tweakToBeDeleted), false, false],
    ['excluded T, tainted T->F', makeNode(ex, tweakToBeDeleted), makeNode(ex), false, false],
    ['excluded T, ready F->T', makeNode(ex, tweakSetReady(false)), makeNode(ex), false, false],
    ['excluded T, ready T->F', makeNode(ex), makeNode(ex, tweakSetReady(false)), false, false],
    ['excluded T, providerID set F->T', makeNode(ex, pid('')), makeNode(ex), true, true],
    ['excluded T, providerID set T->F', makeNode(ex), makeNode(ex, pid('')), true, true],
    ['excluded T, providerID change', makeNode(ex), makeNode(ex, pid(other)), true, true],
    // The taint is what starts lbsync's drain, so it must wake the watcher.
    [
      'ready F, tainted F->T (lbsync: starts the drain)',
      makeNode(tweakSetReady(false)),
      makeNode(tweakSetReady(false), tweakToBeDeleted),
      false,
      true,
    ],
    [
      'ready F, tainted T->F (lbsync: ends the drain)',
      makeNode(tweakSetReady(false), tweakToBeDeleted),
      makeNode(tweakSetReady(false)),
      false,
      true,
    ],
    [
      'ready F, excluded F->T',
      makeNode(tweakSetReady(false)),
      makeNode(tweakSetReady(false), ex),
      true,
      true,
    ],
    [
      'ready F, excluded T->F',
      makeNode(tweakSetReady(false), ex),
      makeNode(tweakSetReady(false)),
      true,
      true,
    ],
    [
      'ready F, providerID set F->T',
      makeNode(tweakSetReady(false), pid('')),
      makeNode(tweakSetReady(false)),
      true,
      true,
    ],
    [
      'ready F, providerID set T->F',
      makeNode(tweakSetReady(false)),
      makeNode(tweakSetReady(false), pid('')),
      true,
      true,
    ],
    [
      'ready F, providerID change',
      makeNode(tweakSetReady(false)),
      makeNode(tweakSetReady(false), pid(other)),
      true,
      true,
    ],
    ['providerID unset, excluded F->T', makeNode(pid('')), makeNode(pid(''), ex), true, true],
    ['providerID unset, excluded T->F', makeNode(pid(''), ex), makeNode(pid('')), true, true],
    [
      'providerID unset, ready T->F',
      makeNode(pid('')),
      makeNode(pid(''), tweakSetReady(true)),
      false,
      false,
    ],
    [
      'providerID unset, ready F->T',
      makeNode(pid('')),
      makeNode(pid(''), tweakSetReady(false)),
      false,
      false,
    ],
    [
      'providerID unset, tainted T->F (lbsync: ends the drain)',
      makeNode(pid(''), tweakToBeDeleted),
      makeNode(pid('')),
      false,
      true,
    ],
    [
      'providerID unset, tainted F->T (lbsync: starts the drain)',
      makeNode(pid('')),
      makeNode(pid(''), tweakToBeDeleted),
      false,
      true,
    ],
  ];
  it.each(rows)('%s: upstream %s, lbsync %s', (name, oldNode, newNode, upstream, lbsync) => {
    expect(nodeChangeMatters(oldNode, newNode)).toBe(lbsync);
    // Every departure from upstream is deliberate and says so in its name.
    if (lbsync !== upstream) expect(name).toMatch(/\(lbsync: .+\)$/);
  });

  it('ignores a kubelet heartbeat', () => {
    expect(nodeChangeMatters(makeNode(), makeNode(tweakHeartbeat))).toBe(false);
  });

  it('wakes on a new InternalIP, because HAProxy dials node addresses', () => {
    expect(nodeChangeMatters(makeNode(), makeNode(tweakInternalIp('10.0.1.99')))).toBe(true);
  });

  it('ignores a label value change that keeps the node excluded', () => {
    expect(nodeChangeMatters(makeNode(tweakExclude('true')), makeNode(tweakExclude('')))).toBe(
      false,
    );
  });

  it('wakes when a label value change lets the node back in', () => {
    expect(nodeChangeMatters(makeNode(tweakExclude('')), makeNode(tweakExclude('false')))).toBe(
      true,
    );
  });

  it('ignores exclude-label flips when ignoreExcludeLabel is set', () => {
    expect(nodeChangeMatters(makeNode(), makeNode(ex), { ignoreExcludeLabel: true })).toBe(false);
  });
});
