/** The run's domains, loaded once per job: a domain that cannot load fails the job for good. */
import { type Domain, dataRootsFromEnv, loadDomain } from '@grove/data';
import { PermanentTaskError, type RunSpec } from '@grove/jobs';

export function loadDomains(spec: RunSpec): Domain[] {
  try {
    return spec.domains.map((reference) => loadDomain(reference, { roots: dataRootsFromEnv() }));
  } catch (error) {
    throw new PermanentTaskError(error instanceof Error ? error.message : String(error));
  }
}

/** The domain an expert trained on. */
export function domainNamed(domains: Domain[], name: string): Domain {
  const domain = domains.find((candidate) => candidate.name === name);
  if (!domain) throw new PermanentTaskError(`"${name}" is not one of the run's domains.`);
  return domain;
}
