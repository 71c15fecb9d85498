// Entry points of the `granary` multi-call binary. Each role lives in its own file and is a
// thin main: parse flags, call the component.
#pragma once


namespace granary::cmd {

// argv[0] is the subcommand name ("metanode"); flags follow.
int RunServer(int argc, char** argv);
int RunMetanode(int argc, char** argv);
int RunDatanode(int argc, char** argv);
int RunS3(int argc, char** argv);
int RunMount(int argc, char** argv);
int RunCsi(int argc, char** argv);
int RunOperator(int argc, char** argv);
int RunAdmin(int argc, char** argv);
int RunBench(int argc, char** argv);
// put get ls stat rm mkdir
int RunFileVerb(int argc, char** argv);

}  // namespace granary::cmd
