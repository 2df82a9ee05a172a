/**
 * Adds a repository: a name and a directory on a local disk. A directory that already holds a
 * repository is imported as it is (the daemon opens it instead of creating one), so the same
 * form serves "import an existing repository".
 */
import {Box, Text} from 'ink';
import {ActionMessage} from '../../components/message/view.js';
import {Form} from '../../components/form/view.js';
import {idFromName} from '../../ids.js';
import {useApi} from '../../router/context.js';
import {useAction} from '../../use-load.js';

export function RepositoryForm(props: {importing?: boolean; onDone: (id: string) => void}) {
  const api = useApi();
  const action = useAction();
  const save = async (v: Record<string, string>) => {
    const taken = (await api.list('repositories').catch(() => [])).map((r) => String(r.id));
    const body = {id: idFromName(v.name ?? '', taken), name: v.name?.trim(), path: v.path?.trim()};
    const r = await action.run(props.importing ? 'Importing the repository' : 'Creating the repository', () => api.create('repositories', body), () => `Repository ${body.name} saved.`);
    if (r.ok) props.onDone(body.id);
  };
  return (
    <Box flexDirection="column">
      <Text wrap="wrap">
        {props.importing
          ? 'Give the directory of an existing repository (for example a disk moved from another appliance); its restore points become available.'
          : 'A repository is a directory on a local disk of the appliance. It is created if empty; an existing repository there is imported.'}
      </Text>
      <Form
        fields={[
          {key: 'name', label: 'Name', kind: 'text', placeholder: 'e.g. main'},
          {key: 'path', label: 'Directory', kind: 'text', placeholder: 'e.g. /srv/backup/main'},
        ]}
        submitLabel={props.importing ? 'import' : 'create'}
        onSubmit={(v) => void save(v)}
      />
      <ActionMessage state={action.state} />
    </Box>
  );
}
