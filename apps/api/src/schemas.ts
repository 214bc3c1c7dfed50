/** Request schemas every route shares: one definition of a run id in a path. */
import { RUN_ID_PATTERN } from '@grove/jobs';
import { z } from 'zod';

export const RunId = z.string().regex(RUN_ID_PATTERN, 'a run id is lowercase letters, digits and dashes, at most 63');

export const RunIdParams = z.object({ id: RunId });
