/* policylag: measures how fast an AWS IoT Core policy change reaches MQTT clients. */
#include "harness/cli.h"

int main(int argc, char **argv)
{
	return cli_main(argc, argv);
}
